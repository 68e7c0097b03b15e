"""The gate in front of the routes: refuse /admin to consumer keys, authenticate every /v1
request, apply rate limits and time limits, and let no response leave before its audit
entry (every /v1, /admin and /.well-known request) is committed.

If the audit entry cannot be written the response is withheld (503): nothing is served
that the log does not show. A stream's entry is written before its first byte.

Authentication takes the lean path in the event loop when it can (api.auth), a worker
thread otherwise. The audit entry's transaction is where a request is finally admitted:
its nonce is claimed and its key checked live there (api.audit_writer), and a request
that fails either is answered with the refusal (replay, revoked key) instead.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from urllib.parse import parse_qsl

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.asgi import BufferedResponse, FieldLines, body_digest, request_view
from api.audit import outcome_for
from api.audit_writer import REPLAYED, WRITTEN, AuditRecord, AuditWriter
from api.auth import AuthError, RequestAuthenticator
from api.deps import NOT_FOUND
from api.exchange import AuditUnavailable, Exchange, Refusal, Replayed
from api.limits import Bucket, MemoryBuckets, RateLimiter, retry_after
from api.metrics import ApiMetrics
from api.notes import RequestNote
from kernel.settings import ApiSettings

log = logging.getLogger(__name__)

AUTHENTICATED = "/v1"
ADMIN = "/admin"  # the console's realm (issue 8): no consumer key opens it
AUDITED = ("/v1", "/.well-known", ADMIN)
REPLAY = Refusal(401, "nonce already used", "replay")
REVOKED = Refusal(401, "unknown or revoked key", "revoked_key")
VERDICT = "neuron.audit_verdict"  # scope key: why a stream's head was refused by its audit entry


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def audit_path(scope: Scope) -> str:
    """The request path with the names of its query parameters, never their values."""
    query = scope.get("query_string", b"").decode("latin-1")
    names = sorted({name for name, _ in parse_qsl(query, keep_blank_values=True)})
    path: str = scope["path"]
    return path + ("?" + "&".join(names) if names else "")


class Gate:
    """Pure ASGI middleware: the gate described in the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        authenticator: RequestAuthenticator,
        writer: AuditWriter,
        options: ApiSettings | None = None,
        limiter: RateLimiter | None = None,
        metrics: ApiMetrics | None = None,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.writer = writer
        self.options = options or ApiSettings()
        self.limiter = limiter or MemoryBuckets()
        self.metrics = metrics or ApiMetrics()
        self.consumer_bucket = Bucket(self.options.rate_per_second, self.options.rate_burst)
        self.address_bucket = Bucket(self.options.anonymous_rate_per_second, self.options.anonymous_burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = Exchange(scope, send, self.options.request_timeout_seconds, self._stream_head)
        # Routes find the note as request.state.audit and fill in what they served.
        scope.setdefault("state", {})["audit"] = exchange.note
        self.metrics.in_flight.inc()
        try:
            try:
                receive = await self._admit(exchange, receive)
                await self._serve(exchange, receive)
            except Refusal as refusal:
                exchange.refuse(refusal)
            if not exchange.streamed:
                await self._finish(exchange)
        finally:
            self.metrics.in_flight.dec()

    async def _take(self, key: str, bucket: Bucket, now: datetime, consume: bool = True) -> float:
        if isinstance(self.limiter, MemoryBuckets):
            return self.limiter.take(key, bucket, now.timestamp(), consume=consume)
        return await run_in_threadpool(self.limiter.take, key, bucket, now.timestamp(), consume=consume)

    async def _admit(self, ex: Exchange, receive: Receive) -> Receive:
        """Let the request through (perhaps with its body replayed) or raise a Refusal."""
        path, client = ex.scope["path"], ex.scope.get("client")
        address = f"address:{client[0] if client else 'unknown'}"
        # Requests that do not authenticate spend their address's tokens; a consumer's own
        # requests never do, but an address that has spent them all is refused unheard.
        wait = await self._take(address, self.address_bucket, ex.now, consume=False)
        if wait:
            raise Refusal(429, "too many requests", "throttled_address", {"Retry-After": retry_after(wait)})
        admin = _under(path, ADMIN)
        signed = "signature" in FieldLines.from_asgi(ex.scope["headers"])
        # The console (issue 8) signs its people in itself; only unsigned requests reach it.
        if not ((admin and signed) or _under(path, AUTHENTICATED)):
            await self._take(address, self.address_bucket, ex.now)
            return receive
        body, receive = await self._read_body(ex.scope, receive)
        try:
            caller = self.authenticator.authenticate_scope(ex.scope, ex.now, body)
            if caller is None:
                caller = await run_in_threadpool(self.authenticator.authenticate, request_view(ex.scope), ex.now, body)
            elif not self.authenticator.nonces.deferred:
                await run_in_threadpool(self.authenticator.claim, caller, ex.now)
        except AuthError as exc:
            await self._take(address, self.address_bucket, ex.now)
            raise Refusal(404, NOT_FOUND, "admin_realm") if admin else Refusal(401, exc.reason, exc.code) from exc
        ex.note.caller = caller
        if admin:
            # The console has its own principals (issue 8); a consumer key never opens it.
            raise Refusal(404, NOT_FOUND, "admin_realm")
        wait = await self._take(f"consumer:{caller.consumer}", self.consumer_bucket, ex.now)
        if wait:
            raise Refusal(429, "rate limit exceeded", "throttled", {"Retry-After": retry_after(wait)})
        return receive

    async def _read_body(self, scope: Scope, receive: Receive) -> tuple[bytes, Receive]:
        """The request body (bounded), and a `receive` that hands it to the routes again."""
        limit = self.options.max_request_body_bytes
        declared = FieldLines.from_asgi(scope["headers"]).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise Refusal(413, f"request body over {limit} bytes", "too_large")
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise Refusal(413, f"request body over {limit} bytes", "too_large")
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: disconnects, as the server reports them
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return body, replay

    async def _serve(self, ex: Exchange, receive: Receive) -> None:
        ex.cancel.deadline = anyio.current_time() + self.options.request_timeout_seconds
        with ex.cancel:
            try:
                await self.app(ex.scope, receive, ex.capture)
            except Replayed:
                refusal = self._refusal(ex, ex.scope.get(VERDICT, REPLAYED))
                ex.note = RequestNote(feed=ex.note.feed)
                ex.refuse(refusal)
            except AuditUnavailable:
                log.error("audit entry not written: stream withheld")
                ex.response = BufferedResponse.json(503, {"detail": "audit log unavailable"})
            except Exception as exc:
                if ex.streamed:
                    await self._record_abort(ex)
                    raise  # the head is out: all that is left is to break the connection
                # Only the type: an exception message may quote a data value.
                log.error("unhandled %s while serving %s", type(exc).__name__, ex.scope["path"])
                ex.response = BufferedResponse.json(500, {"detail": "internal error"})
        if ex.cancel.cancelled_caught and not ex.streamed:
            ex.refuse(Refusal(503, "request timed out", "timeout", {"Retry-After": "1"}))

    async def _finish(self, ex: Exchange) -> None:
        audited = any(_under(ex.scope["path"], prefix) for prefix in AUDITED)
        while audited:
            ex.note.response_digest = body_digest(ex.response.body)
            try:
                verdict = await self.record(ex, ex.response.status)
                if verdict == WRITTEN:
                    break
                # The original of a replay committed first, or the key was revoked: this
                # request is refused, and logged so.
                refusal = self._refusal(ex, verdict)
                ex.note = RequestNote(feed=ex.note.feed)
                ex.refuse(refusal)
            except Exception as exc:
                log.error("audit entry not written (%s): response withheld", type(exc).__name__)
                ex.response = BufferedResponse.json(503, {"detail": "audit log unavailable"})
                break
        self.observe(ex, ex.response.status)
        await ex.response.replay(ex.send)

    async def _stream_head(self, ex: Exchange, status: int) -> bool:
        verdict = await self.record(ex, status)
        if verdict == WRITTEN:
            self.observe(ex, status)
            return True
        ex.scope[VERDICT] = verdict
        return False

    def _refusal(self, ex: Exchange, verdict: str) -> Refusal:
        """The refusal for an entry the audit writer did not admit; a revoked key leaves the cache."""
        if verdict == REPLAYED:
            return REPLAY
        if ex.note.caller is not None:
            self.authenticator.keys.forget(ex.note.caller.key_id)
        return REVOKED

    def observe(self, ex: Exchange, status: int) -> None:
        """Metrics and the one log line of a request (no query values, no identifiers)."""
        route = getattr(ex.scope.get("route"), "path", "unmatched")
        self.metrics.observe(route, ex.scope["method"], status, time.perf_counter() - ex.started, ex.note.reason)
        if ex.note.rows and ex.note.format:
            self.metrics.served_rows(ex.note.format, ex.note.rows)
        actor = ex.note.caller.consumer if ex.note.caller else "anonymous"
        log.info("%s %s -> %d (%s)", ex.scope["method"], audit_path(ex.scope), status, actor)

    async def record(self, ex: Exchange, status: int, action: str = "request") -> str:
        """Append the request's audit entry, claiming its nonce and checking its key live; the verdict."""
        note, caller = ex.note, ex.note.caller
        request = action == "request" and caller is not None
        claims = request and self.authenticator.nonces.deferred
        record = AuditRecord(
            actor=caller.consumer if caller else "anonymous",
            action=action,
            outcome=outcome_for(status),
            at=ex.now,
            method=ex.scope["method"],
            path=audit_path(ex.scope),
            feed=note.feed,
            status_code=status,
            rows=note.rows,
            policy_fingerprint=note.policy_fingerprint,
            detail=note.detail(),
            nonce=(caller.key_id, caller.nonce) if claims and caller else None,
            key_id=caller.key_id if request and caller else None,
        )
        verdict = await self.writer.append(record)
        if verdict == REPLAYED and caller is not None:
            # A replay is the attacker's request, not the consumer's: the token it took from
            # the consumer's bucket before the nonce could be claimed goes back (issue 17).
            key = f"consumer:{caller.consumer}"
            if isinstance(self.limiter, MemoryBuckets):
                self.limiter.give_back(key, self.consumer_bucket)
            else:
                await run_in_threadpool(self.limiter.give_back, key, self.consumer_bucket)
        return verdict

    async def _record_abort(self, ex: Exchange) -> None:
        try:
            await self.record(ex, 500, action="stream_aborted")
        except Exception as exc:
            log.error("abort of a stream not audited (%s)", type(exc).__name__)
