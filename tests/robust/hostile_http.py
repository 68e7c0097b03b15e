"""A hostile vendor on loopback: each path misbehaves one way a real vendor (or an attacker
between us and it) can — dripping bytes, looping tokens, redirect loops, short bodies."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from simulator.http_server import QuietServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    pages: ClassVar[dict[str, Any]] = {}

    def log_message(self, format: str, *args: Any) -> None:
        """Silent."""

    def _json(self, payload: Any, status: int = 200) -> None:
        body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        raw_token = query.get("page_token", "0")
        token = int(raw_token) if raw_token.isdigit() else 0
        path = url.path
        if path == "/drip":  # a byte every 0.2 s: no socket read ever times out
            self.send_response(200)
            self.send_header("Content-Length", "40")
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.2)
        elif path == "/same-token":
            self._json({"data": [], "next_page_token": "again"})
        elif path == "/endless":
            self._json({"data": [{"n": token}], "next_page_token": str(token + 1)})
        elif path == "/slow-pages":
            time.sleep(0.3)
            self._json({"data": [], "next_page_token": str(token + 1)})
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/redirect")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/short":  # announces more than it sends, then closes
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"data": [')
            self.close_connection = True
        elif path == "/huge":
            self._json(b'{"data": ["' + b"x" * 200_000 + b'"]}')
        elif path == "/nested":
            self._json(b"[" * 100_000 + b"]" * 100_000)
        elif path == "/rows":
            self._json({"data": self.pages.get("rows", [])})
        else:
            self._json({"error": "not found"}, 404)


@contextmanager
def hostile_vendor(rows: list[Any] | None = None) -> Iterator[str]:
    """The hostile vendor's base URL, on a free loopback port."""
    handler = type("Handler", (_Handler,), {"pages": {"rows": rows or []}})
    server = QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
