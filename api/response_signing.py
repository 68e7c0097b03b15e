"""The hub's signature on every response (RFC 9421, Ed25519, label `hub`).

It covers `@status`, `content-digest`, `content-type`, every `Neuron-*` header (the cursor
and partition headers steer the client, so they must not be alterable) and, when the
request carried a signature, that request's `Signature` field (`"signature";req`): it
binds a response to the one request it answers, so a recorded response cannot be replayed
as the answer to another request.

The signature base is built here rather than by the http-message-signatures library: the
hub signs every response, the components are fixed header fields and the library's
general machinery cost five times the signature itself. Clients verify with the library
(api.verify), and every test does, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.asgi import STREAM, BufferedResponse, FieldLines, body_digest
from api.signing import ALGORITHM, REQUEST_BINDING, RESPONSE_LABEL, response_components
from privacy.keys import HubKeys

log = logging.getLogger(__name__)
# Every answer is personal to its caller and typed exactly: no cache keeps it, no browser sniffs it.
HARDENING = {"cache-control": "no-store", "x-content-type-options": "nosniff"}


def _printable(value: str) -> bool:
    return value.isascii() and value.isprintable()  # for ASCII: exactly " " to "~"


def _identifier(component: str) -> str:
    # '"signature";req' is already serialised; a plain name becomes a structured-field string.
    return component if component.startswith('"') else f'"{component}"'


def sign_response(
    status: int,
    headers: FieldLines,
    request_signature: str | None,
    key_id: str,
    private_key: Ed25519PrivateKey,
    created: datetime | None = None,
) -> None:
    """Add Signature-Input and Signature to `headers` (which must hold Content-Digest).

    The request's signature is bound only when it is printable ASCII, as a signature base
    must be; a response to a request with a mangled Signature field is still signed.
    """
    for name in ("signature", "signature-input"):
        del headers[name]
    bound = request_signature is not None and _printable(request_signature.strip())
    fields: dict[str, list[str]] = {}
    for name, field_value in headers.items():
        fields.setdefault(name.lower(), []).append(field_value)
    components = ["content-digest", *response_components(list(fields), bound)]
    lines = []
    for component in components:
        if component == REQUEST_BINDING:
            value = (request_signature or "").strip()
        elif component == "@status":
            value = str(status)
        else:
            value = ", ".join(fields.get(component, ())).strip()
            if not _printable(value):
                raise ValueError(f"response header {component} is not printable ASCII")
        lines.append(f"{_identifier(component)}: {value}")
    moment = int((created or datetime.now(UTC)).timestamp())
    params = f'({" ".join(_identifier(c) for c in components)});created={moment};keyid="{key_id}";alg="{ALGORITHM}"'
    base = "\n".join([*lines, f'"@signature-params": {params}'])
    signature = base64.b64encode(private_key.sign(base.encode())).decode()
    headers["Signature-Input"] = f"{RESPONSE_LABEL}={params}"
    headers["Signature"] = f"{RESPONSE_LABEL}=:{signature}:"


def _request_signature(scope: Scope) -> str | None:
    """The request's Signature field (its lines joined), as `request_view` would read it."""
    values = [value.decode("latin-1") for name, value in scope["headers"] if name.lower() == b"signature"]
    return ", ".join(values) if values else None


class SignedResponses:
    """Pure ASGI middleware: every HTTP response, errors included, leaves signed by the hub.

    Buffered responses are signed over a digest of their body. A stream (a start message
    flagged `STREAM`, which carries its own Content-Digest) is signed over its head at
    once and its body passes through in chunks, so memory stays bounded.
    """

    def __init__(self, app: ASGIApp, keys: HubKeys) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response = BufferedResponse()
        streaming = False

        async def capture(message: Message) -> None:
            nonlocal streaming
            if message["type"] == "http.response.start" and message.get(STREAM):
                streaming = True
                await send(self._signed_start(scope, message["status"], message.get("headers", []), None))
            elif streaming:
                await send(message)
            else:
                await response.capture(message)

        try:
            await self.app(scope, receive, capture)
        except Exception as exc:
            if streaming:
                raise  # the head is out: all that is left is to break the connection
            # Record only the exception type: a message may quote data values.
            log.error("unhandled %s while serving a request", type(exc).__name__)
            response = BufferedResponse.json(500, {"detail": "internal error"})
        if streaming:
            return
        body = response.body
        await send(self._signed_start(scope, response.status, response.headers, body))
        await send({"type": "http.response.body", "body": body})

    def _signed_start(
        self, scope: Scope, status: int, raw_headers: list[tuple[bytes, bytes]], body: bytes | None
    ) -> Message:
        headers = FieldLines.from_asgi(raw_headers)
        for name, value in HARDENING.items():
            if name not in headers:
                headers[name] = value
        if body is not None:
            headers["content-digest"] = body_digest(body)
        key = self.keys.active_signing_key
        sign_response(status, headers, _request_signature(scope), key.kid, key.private)
        return {"type": "http.response.start", "status": status, "headers": headers.to_asgi()}
