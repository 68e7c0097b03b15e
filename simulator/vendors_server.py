"""The intercom/CCTV vendor's open API on loopback, in the style of the big Chinese vendors'.

`GET /openapi/v1/{calls|camera-health|events}?startTime=&endTime=&pageNo=&pageSize=` with a
bearer token; the window is by update time, half-open. Answers are HTTP 200 with an
envelope `{"code": "0", "msg": "success", "data": {"total", "pageNo", "pageSize", "list"}}`;
errors keep HTTP 200 and put a vendor code in `code` (a bad token is `0x02401003`),
except the injected `503` of an overloaded gateway.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import cast
from urllib.parse import parse_qs, urlsplit

from simulator.http_server import JsonHandler, RunningServer, VendorServer, VendorState, serve_in_thread
from simulator.vendors_intercom import RESOURCES, IntercomVendor

PREFIX = "/openapi/v1/"
MAX_PAGE_SIZE = 1000
TOKEN_REFUSED = "0x02401003"
BAD_PARAMETER = "0x02401000"


class _State(VendorState):
    def __init__(self, vendor: IntercomVendor, token: str) -> None:
        super().__init__()
        self.vendor, self.token = vendor, token.encode()


class _Handler(JsonHandler):
    server_version = "VideoOpenAPI/1.6"

    def do_GET(self) -> None:
        """Serve one page of a resource."""
        server = cast(_State, cast(VendorServer, self.server).state)
        url = urlsplit(self.path)
        resource = url.path.removeprefix(PREFIX)
        if not url.path.startswith(PREFIX) or resource not in RESOURCES:
            self._send(404, {"code": "404", "msg": "not found"})
            return
        with server.lock:
            server.count += 1
            n = server.count
        every = server.vendor.faults.error_every
        if every and n % every == 0:
            self._send(503, {"code": "503", "msg": "gateway busy"})
            return
        scheme, _, given = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), server.token):
            self._send(200, {"code": TOKEN_REFUSED, "msg": "token invalid"})
            return
        try:
            params = {k: v[-1] for k, v in parse_qs(url.query).items()}
            since, until = datetime.fromisoformat(params["startTime"]), datetime.fromisoformat(params["endTime"])
            page, size = int(params.get("pageNo", "1")), int(params.get("pageSize", "100"))
            if since.tzinfo is None or until.tzinfo is None or page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
                raise ValueError("bad window or page")
        except (KeyError, ValueError):
            self._send(200, {"code": BAD_PARAMETER, "msg": "parameter error"})
            return
        rows = server.vendor.records_updated_between(resource, since, until)
        data = {"total": len(rows), "pageNo": page, "pageSize": size, "list": rows[(page - 1) * size : page * size]}
        self._send(200, {"code": "0", "msg": "success", "data": data})


def start_intercom_api(vendor: IntercomVendor, token: str, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve `vendor` over HTTP on host:port (0 picks a free port) in a daemon thread."""
    return serve_in_thread(_Handler, _State(vendor, token), "intercom-api", host, port)
