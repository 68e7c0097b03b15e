"""A man in the middle for the tests: forwards requests to the hub over loopback and, when
told to, alters responses, replays an earlier one, answers 503, or cuts connections.

It is an attacker who has broken the channel: it speaks plain HTTP to the client and HTTPS to
the hub (trusting the hub's certificate), so what it does to answers is what only the hub's
signatures can catch."""

from __future__ import annotations

import http.client
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from tests.api.hub import trusted

Headers = list[tuple[str, str]]
Answer = tuple[int, Headers, bytes]
Tamper = Callable[[int, Headers, bytes], Answer]
HOP_BY_HOP = {"connection", "keep-alive", "content-length", "transfer-encoding"}


class TamperingProxy:
    """An HTTP proxy on 127.0.0.1 in a background thread."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        ca = trusted(upstream) if parts.scheme == "https" else None
        self._tls = ssl.create_default_context(cafile=ca if isinstance(ca, str) else None) if ca else None
        self.tamper: Tamper | None = None
        self.replay: Answer | None = None  # answered instead of the hub's response
        self.unavailable = 0  # answer this many requests with 503 + Retry-After: 0 first
        self.cut_after: int | None = None  # forward this many requests, then hang up on the rest
        self.hold_after: int | None = None  # forward this many, then hold the rest until `release`
        self.held = threading.Semaphore(0)  # released once per request being held
        self._release = threading.Event()
        self.forwarded = 0
        self.recorded: list[Answer] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                proxy._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> TamperingProxy:
        self._thread.start()
        return self

    def release(self) -> None:
        """Let the held requests go (they are hung up on)."""
        self._release.set()

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            if self.unavailable > 0:
                self.unavailable -= 1
                self._answer(handler, (503, [("Retry-After", "0")], b""))
                return
            if self.cut_after is not None and self.forwarded >= self.cut_after:
                return  # no answer: the connection closes, the client sees it drop
            holding = self.hold_after is not None and self.forwarded >= self.hold_after
            if not holding:
                self.forwarded += 1
        if holding:
            self.held.release()
            self._release.wait(timeout=60)
            return  # then hang up without an answer
        # Forwarded as sent, Host included: the client signed the authority it addressed.
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
        connection = (
            http.client.HTTPSConnection(*self.upstream, timeout=10, context=self._tls)
            if self._tls is not None
            else http.client.HTTPConnection(*self.upstream, timeout=10)
        )
        try:
            connection.request("GET", handler.path, headers=headers)
            response = connection.getresponse()
            answer: Answer = (response.status, response.getheaders(), response.read())
        finally:
            connection.close()
        self.recorded.append(answer)
        if self.replay is not None:
            answer = self.replay
        if self.tamper is not None:
            answer = self.tamper(*answer)
        self._answer(handler, answer)

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, answer: Answer) -> None:
        status, headers, body = answer
        handler.send_response_only(status)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def replace_header(name: str, value: Callable[[str], str]) -> Tamper:
    """A tamper that rewrites one response header."""

    def tamper(status: int, headers: Headers, body: bytes) -> Answer:
        return status, [(n, value(v) if n.lower() == name.lower() else v) for n, v in headers], body

    return tamper


def add_header(name: str, value: str) -> Tamper:
    """A tamper that adds a response header."""

    def tamper(status: int, headers: Headers, body: bytes) -> Answer:
        return status, [*headers, (name, value)], body

    return tamper


def flip_last_body_byte(status: int, headers: Headers, body: bytes) -> Answer:
    """A tamper that changes one byte of the body (the last one before a trailing newline)."""
    index = len(body) - 2 if body.endswith(b"\n") else len(body) - 1
    flipped = bytes([body[index] ^ 0x01])
    return status, headers, body[:index] + flipped + body[index + 1 :]


def set_status(new_status: int) -> Tamper:
    """A tamper that changes the status code."""

    def tamper(status: int, headers: Headers, body: bytes) -> Answer:
        return new_status, headers, body

    return tamper
