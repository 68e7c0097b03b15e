"""HTTPS for the hub's listeners (issue 17): uvicorn's TLS options and the HSTS header.

Both listeners (the export API and the console) serve HTTPS unless `api.tls` is off (a
hub behind a TLS-terminating proxy that forwards `X-Forwarded-Proto`). HSTS is sent only
on responses that went out over TLS, as RFC 6797 §7.2 requires.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kernel.settings import Settings
from privacy.tls import hub_certificate


def tls_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's ssl_certfile/ssl_keyfile for this hub, or nothing when TLS is off."""
    if not settings.api.tls:
        return {}
    certificate = hub_certificate(settings)
    return {"ssl_certfile": str(certificate.certfile), "ssl_keyfile": str(certificate.keyfile)}


class StrictTransport:
    """Pure ASGI middleware: Strict-Transport-Security on every response sent over TLS."""

    def __init__(self, app: ASGIApp, max_age: int) -> None:
        self.app = app
        self.value = f"max-age={max_age}; includeSubDomains".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def with_hsts(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"strict-transport-security", self.value)]
            await send(message)

        await self.app(scope, receive, with_hsts)
