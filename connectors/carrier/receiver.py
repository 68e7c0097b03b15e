"""The HTTP side of `neuron inbox`: a bare ASGI app (no framework on the hot path) that answers a
carrier only after the push is durable in the inbox.

- CTWing: POST {ctwing_path}. No signature exists to check [unverified]: the secret path and the
  tenantId allow-list are the protection. A body the inbox cannot parse is still kept and answered
  200: a run of non-200 answers puts the receiver into CTWing's cool-down, which silently loses a
  minute of alarms; the processor lands the unreadable body under `_rejects`.
- OneNET: GET {onenet_path}?msg&nonce&signature (URL verification: the bare msg back when the
  signature is right, 403 otherwise) and POST with `msg_signature` checked before anything is kept
  (403 on a wrong signature: the only non-200 answer to a push, as the standard says).
- GET /healthz: counts (no identifiers).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from connectors.carrier import onenet
from connectors.carrier.store import InboxStore, quantiles
from kernel.inbox_settings import InboxSettings

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class ReceiverStats:
    accepted: int = 0
    verified: int = 0  # OneNET URL verifications answered
    refused_signature: int = 0
    refused_tenant: int = 0
    too_large: int = 0
    store_failed: int = 0


class InboxApp:
    """The inbox's ASGI application."""

    def __init__(self, config: InboxSettings, store: InboxStore, health: Callable[[], dict[str, Any]]) -> None:
        self.config, self.store, self.health = config, store, health
        self.stats = ReceiverStats()
        self._token = config.onenet_token.get_secret_value()
        self._tenants = frozenset(config.ctwing_tenants)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == self.config.ctwing_path and method == "POST":
            await self._ctwing(receive, send)
        elif path == self.config.onenet_path and method == "POST":
            await self._onenet_push(receive, send)
        elif path == self.config.onenet_path and method == "GET":
            await self._onenet_verify(scope, send)
        elif path == "/healthz" and method == "GET":
            s = self.store
            store = {"appended": s.appended, "commit_groups": s.groups, "commit_ms": quantiles(s.commit_ms),
                     "durable_ms": quantiles(s.durable_ms)}  # fmt: skip
            body = {"receiver": vars(self.stats), **store, **self.health()}
            await _reply(send, 200, json.dumps(body).encode(), b"application/json")
        else:
            await _reply(send, 404, b"not found")

    async def _body(self, receive: Receive, send: Send) -> bytes | None:
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.config.max_body_bytes:
                self.stats.too_large += 1
                await _reply(send, 413, b"too large")
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

    async def _keep(self, carrier: str, body: bytes, send: Send) -> None:
        """Write the push durably, then answer 200; 503 if it could not be written."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()

        def done(seq: int | None, exc: BaseException | None) -> None:
            loop.call_soon_threadsafe(_settle, future, seq, exc)

        self.store.append(carrier, body, done)
        try:
            await future
        except Exception:  # any storage failure: the carrier must re-send
            self.stats.store_failed += 1
            await _reply(send, 503, b"inbox unavailable")
            return
        self.stats.accepted += 1
        await _reply(send, 200, b"ok")

    async def _ctwing(self, receive: Receive, send: Send) -> None:
        body = await self._body(receive, send)
        if body is None:
            return
        if self._tenants:
            try:
                tenant = json.loads(body).get("tenantId")
            except (ValueError, AttributeError, RecursionError):
                tenant = None  # unreadable: kept (see above); the processor rejects it with a reason
            if tenant is not None and str(tenant) not in self._tenants:
                self.stats.refused_tenant += 1
                await _reply(send, 403, b"tenant not accepted")
                return
        await self._keep("ctwing", body, send)

    async def _onenet_push(self, receive: Receive, send: Send) -> None:
        body = await self._body(receive, send)
        if body is None:
            return
        try:
            text = body.decode()
            parsed = json.loads(text)
        except (UnicodeDecodeError, ValueError, RecursionError):
            parsed = None
        if not isinstance(parsed, dict) or not onenet.push_signature_ok(self._token, text, parsed):
            self.stats.refused_signature += 1
            await _reply(send, 403, b"signature does not verify")
            return
        await self._keep("onenet", body, send)

    async def _onenet_verify(self, scope: Scope, send: Send) -> None:
        # parse_qsl turns '+' into a space; onenet.signature_ok turns it back (the standard's rule).
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        answer = onenet.verification_answer(self._token, query)
        if answer is None:
            self.stats.refused_signature += 1
            await _reply(send, 403, b"signature does not verify")
            return
        self.stats.verified += 1
        await _reply(send, 200, answer.encode())


def _settle(future: asyncio.Future[int], seq: int | None, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None or seq is None:
        future.set_exception(exc or RuntimeError("not stored"))
    else:
        future.set_result(seq)


async def _reply(send: Send, status: int, body: bytes, content_type: bytes = b"text/plain") -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
