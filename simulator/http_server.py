"""What every simulated vendor API shares: a quiet threaded server, JSON replies, and a
handle to start, count and stop it (the parking, intercom and other peers' servers)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


class VendorState:
    """What a vendor server's handlers share: a lock and the counts the fault schedules use."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.slowed = 0  # requests held back by a `slow_every` fault


class QuietServer(ThreadingHTTPServer):
    """A threaded loopback server that never prints: a traceback could carry an identifier."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay silent: a traceback could carry a plate or a room address to stderr."""


class JsonHandler(BaseHTTPRequestHandler):
    """What every simulated vendor API's handler shares: keep-alive, no access log, JSON replies."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, keep-alive clients stall ~40 ms each.
    disable_nagle_algorithm = True
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """No access log: request lines and errors must never put identifiers on stderr."""

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class VendorServer(QuietServer):
    state: VendorState


class RunningServer:
    """A started API: its URL, how many (counted) requests it has answered, and how to stop it."""

    def __init__(self, httpd: VendorServer, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread
        self._stopped = False
        host, self.port = httpd.server_address[:2]
        self.url = f"http://{host!s}:{self.port}"

    @property
    def request_count(self) -> int:
        """Authorised requests to the passes endpoint so far (the count the fault schedule uses)."""
        with self._httpd.state.lock:
            return self._httpd.state.count

    @property
    def slowed_count(self) -> int:
        """Requests the `slow_every` fault held back so far."""
        with self._httpd.state.lock:
            return self._httpd.state.slowed

    def stop(self) -> None:
        """Stop serving, close the socket and join the serving thread; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_in_thread(
    handler: type[BaseHTTPRequestHandler], state: VendorState, name: str, host: str = "127.0.0.1", port: int = 0
) -> RunningServer:
    """Serve `handler` with `state` on host:port (0 picks a free port) in a daemon thread."""
    httpd = VendorServer((host, port), handler)
    httpd.state = state
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True)
    thread.start()
    return RunningServer(httpd, thread)
