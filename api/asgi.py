"""Small ASGI helpers: header field lines, buffered responses, and a signable view of a request.

Most responses are buffered whole because they are signed over a digest of their body and
audited before they leave; pages are bounded by `api.max_page_size`, so that is affordable.
Partition files are the exception: their start message carries `STREAM` and a
Content-Digest taken from the signed manifest, and their body passes through in chunks.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Message, Scope, Send

# Key of an http.response.start message whose body follows in chunks and whose headers
# already hold its Content-Digest: middlewares pass such a response on instead of buffering.
STREAM = "neuron.stream"


def content_digest(sha256: bytes) -> str:
    """A Content-Digest field value (RFC 9530) for a SHA-256 digest."""
    return "sha-256=:" + base64.b64encode(sha256).decode() + ":"


def body_digest(body: bytes) -> str:
    """The Content-Digest of a whole body."""
    return content_digest(hashlib.sha256(body).digest())


class FieldLines:
    """Header field lines in wire order: what the signature library reads and writes."""

    def __init__(self, lines: Iterable[tuple[str, str]] = ()) -> None:
        self.lines = list(lines)

    @classmethod
    def from_asgi(cls, raw: Iterable[tuple[bytes, bytes]]) -> FieldLines:
        """Field lines from ASGI's (name, value) byte pairs."""
        return cls((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw)

    def to_asgi(self) -> list[tuple[bytes, bytes]]:
        """ASGI's byte pairs, names lower-cased as HTTP/2 and ASGI expect."""
        return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in self.lines]

    def get(self, name: str) -> str | None:
        """The field's value (several lines joined by a comma), or None when absent."""
        values = [v for n, v in self.lines if n.lower() == name.lower()]
        return ", ".join(values) if values else None

    def names(self) -> list[str]:
        """The distinct field names, lower-cased."""
        return list(dict.fromkeys(n.lower() for n, _ in self.lines))

    def items(self) -> Iterator[tuple[str, str]]:
        return iter(self.lines)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(n for n, _ in self.lines))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n.lower() == name.lower() for n, _ in self.lines)

    def __setitem__(self, name: str, value: str) -> None:
        del self[name]
        self.lines.append((name, value))

    def __delitem__(self, name: str) -> None:
        self.lines = [(n, v) for n, v in self.lines if n.lower() != name.lower()]


@dataclass
class RequestView:
    """A request as the signature library sees it: method, absolute URL, field lines."""

    method: str
    url: str
    headers: FieldLines


@dataclass
class ResponseView:
    """A response as the signature library sees it, with the request it answers."""

    status_code: int
    headers: FieldLines
    request: RequestView | None = None


def request_view(scope: Scope) -> RequestView:
    """The request of an ASGI scope exactly as the client sent it (raw path and query)."""
    headers = FieldLines.from_asgi(scope["headers"])
    # The authority the client signed is the Host it sent; the raw path keeps its encoding.
    host = headers.get("host")
    if host is None:
        server_host, server_port = scope.get("server") or ("localhost", None)
        host = f"{server_host}:{server_port}" if server_port else server_host
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    url = f"{scope.get('scheme', 'http')}://{host}{raw_path.decode('latin-1')}"
    if query:
        url += "?" + query.decode("latin-1")
    return RequestView(method=scope["method"], url=url, headers=headers)


@dataclass
class BufferedResponse:
    """A whole response held back until it has been audited and signed."""

    status: int = 500
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)

    @classmethod
    def json(cls, status: int, payload: Any, extra: dict[str, str] | None = None) -> BufferedResponse:
        """A JSON response built without the framework (for refusals before routing)."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in (extra or {}).items()]
        return cls(status=status, headers=headers, chunks=[body])

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    async def capture(self, message: Message) -> None:
        """An ASGI `send` that keeps the response instead of sending it."""
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))

    async def replay(self, send: Send) -> None:
        """Send the held response in one piece."""
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})
