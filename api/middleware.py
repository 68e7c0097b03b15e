"""The gate in front of the routes: authenticate every /v1 request, audit every /v1 and
/.well-known request, and let no response leave before its audit entry is committed.

If the audit entry cannot be written the response is withheld (503): nothing is served
that the log does not show.
"""

from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from api.asgi import BufferedResponse, request_view
from api.audit import RequestNote, append_audit, outcome_for
from api.auth import AuthError, RequestAuthenticator
from warehouse.control import session_scope

log = logging.getLogger(__name__)

AUTHENTICATED = "/v1"
AUDITED = ("/v1", "/.well-known")


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def audit_path(scope: Scope) -> str:
    """The request path with the names of its query parameters, never their values."""
    query = scope.get("query_string", b"").decode("latin-1")
    names = sorted({name for name, _ in parse_qsl(query, keep_blank_values=True)})
    path: str = scope["path"]
    return path + ("?" + "&".join(names) if names else "")


class AuthenticateAndAudit:
    """Pure ASGI middleware: the gate described in the module docstring."""

    def __init__(self, app: ASGIApp, authenticator: RequestAuthenticator, control_url: str) -> None:
        self.app = app
        self.authenticator = authenticator
        self.control_url = control_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not any(_under(scope["path"], prefix) for prefix in AUDITED):
            await self.app(scope, receive, send)
            return
        note = RequestNote()
        # Routes find the note as request.state.audit and fill in what they served.
        scope.setdefault("state", {})["audit"] = note
        now: datetime = scope["app"].state.now()
        response = await self._respond(scope, receive, note, now)
        try:
            await run_in_threadpool(self._append, scope, note, response.status, now)
        except Exception as exc:
            log.error("audit entry not written (%s): response withheld", type(exc).__name__)
            response = BufferedResponse.json(503, {"detail": "audit log unavailable"})
        actor = note.caller.consumer if note.caller else "anonymous"
        log.info("%s %s -> %d (%s)", scope["method"], audit_path(scope), response.status, actor)
        await response.replay(send)

    async def _respond(self, scope: Scope, receive: Receive, note: RequestNote, now: datetime) -> BufferedResponse:
        response = BufferedResponse()
        try:
            if _under(scope["path"], AUTHENTICATED):
                note.caller = await run_in_threadpool(self.authenticator.authenticate, request_view(scope), now)
            await self.app(scope, receive, response.capture)
        except AuthError as exc:
            note.reason = exc.code
            return BufferedResponse.json(401, {"detail": exc.reason})
        except Exception as exc:
            # Only the type: an exception message may quote a data value.
            log.error("unhandled %s while serving %s", type(exc).__name__, scope["path"])
            return BufferedResponse.json(500, {"detail": "internal error"})
        return response

    def _append(self, scope: Scope, note: RequestNote, status: int, now: datetime) -> None:
        with session_scope(self.control_url) as session:
            append_audit(
                session,
                actor=note.caller.consumer if note.caller else "anonymous",
                action="request",
                outcome=outcome_for(status),
                method=scope["method"],
                path=audit_path(scope),
                feed=note.feed,
                status_code=status,
                rows=note.rows,
                policy_fingerprint=note.policy_fingerprint,
                detail=note.detail(),
                at=now,
            )
