"""The CTWing/AEP open API's device-status history query, as the simulated platform serves it.

CTWing pushes a message at most 4 times and then, for a failing receiver, not at all for a
minute (the cool-down, dyts/103): what it did not push is "lost unless fetched by API". This is
that API, built from the platform's own documentation and SDKs, not from the hub's client:

- `POST /aep_device_status/getDeviceStatusHisInPage` (API version 20190928013337), JSON body
  `productId`, `deviceId`, `begin_timestamp`, `end_timestamp` (13-digit ms), `page_size`,
  `page_timestamp`; answer `{"code": 0, "msg": "ok", "deviceStatusList": [...],
  "page_timestamp": "..."}`. Per the SDK's documentation: the first page passes
  `page_timestamp` empty or `end_timestamp`, each next page the `page_timestamp` returned, and an
  empty returned `page_timestamp` means there is no next page. (Sources: the AEP API reference
  "设备状态历史数据分页查询" as carried by the ctwing-sdk-browserify `DataOperate.QueryPage` and
  IoT-Toolkit's `TelQueryDeviceDataListResponse`.)
- Every open-API call carries the headers `application` (the app key), `timestamp` (ms),
  `version` and `signature` = Base64(HMAC-SHA1(app secret, "application:<key>\\ntimestamp:<ts>\\n"
  + body + "\\n")), and `MasterKey` for product-level APIs (the SDK's `BaseOperate.sign`, body
  without query parameters). A wrong signature gets a non-zero `code`.

Ambiguous in the sources, and what this peer chose (the hub's client follows the same choices,
connectors/carrier/ctwing_api.py):
- the items' fields are not shown: each item is the stored uplink — `deviceId`, `timestamp` (the
  platform's receive time, the same value its push carried), `serviceId` and `payload` (the
  object model's `serviceData`, or a transparent product's base64 `APPdata`); no `upPacketSN`;
- the order and the cursor: newest first; a page holds items with `timestamp <
  page_timestamp` (exclusive; the first page's bound is `end_timestamp`, also exclusive) and
  `timestamp >= begin_timestamp`; the returned `page_timestamp` is the oldest timestamp on the
  page, and a page never splits one millisecond (it may run past `page_size` to finish it);
- `page_size` at most 100 (the platforms' usual cap; larger values are cut to 100).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HISTORY_PATH = "/aep_device_status/getDeviceStatusHisInPage"
HISTORY_VERSION = "20190928013337"
MAX_PAGE_SIZE = 100


def aep_signature(app_key: str, app_secret: str, timestamp: str, body: bytes) -> str:
    """The AEP open API's request signature over a JSON body (no query parameters)."""
    text = f"application:{app_key}\ntimestamp:{timestamp}\n".encode() + body + b"\n"
    return base64.b64encode(hmac.new(app_secret.encode(), text, hashlib.sha1).digest()).decode()


class CtwingPlatform:
    """The platform's store of device uplinks and its history API on a loopback port."""

    def __init__(self, app_key: str, app_secret: str, master_key: str = "", host: str = "127.0.0.1") -> None:
        self.app_key, self.app_secret, self.master_key = app_key, app_secret, master_key
        self._lock = threading.Lock()
        self._uplinks: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        self.queries = 0
        self.refused = 0
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = platform.answer(self.path, dict(self.headers.items()), body)
                data = json.dumps(answer, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> CtwingPlatform:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def record(self, message: dict[str, Any]) -> None:
        """An uplink the platform received from a device (kept whether or not its push succeeds)."""
        if message.get("messageType") != "dataReport":
            return  # the status history holds device data, not online/offline events
        item = {k: message.get(k) for k in ("deviceId", "timestamp", "serviceId", "payload")}
        with self._lock:
            self._uplinks[(str(message.get("productId")), str(message.get("deviceId")))].append(item)

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        lower = {k.lower(): v for k, v in headers.items()}
        if path.split("?")[0] != HISTORY_PATH:
            return 404, {"code": 404, "msg": "not found"}
        expected = aep_signature(self.app_key, self.app_secret, lower.get("timestamp", ""), body)
        if lower.get("application") != self.app_key or not hmac.compare_digest(lower.get("signature", ""), expected):
            self.refused += 1
            return 200, {"code": 1002, "msg": "signature mismatch"}
        if self.master_key and lower.get("masterkey") != self.master_key:
            self.refused += 1
            return 200, {"code": 1003, "msg": "MasterKey mismatch"}
        try:
            query = json.loads(body)
            begin, end = int(query["begin_timestamp"]), int(query["end_timestamp"])
            size = max(1, min(MAX_PAGE_SIZE, int(query.get("page_size") or MAX_PAGE_SIZE)))
            cursor = int(query.get("page_timestamp") or end)
            key = (str(query["productId"]), str(query["deviceId"]))
        except (ValueError, KeyError, TypeError):
            return 200, {"code": 1001, "msg": "bad request"}
        self.queries += 1
        with self._lock:
            found = sorted(
                (i for i in self._uplinks.get(key, []) if begin <= i["timestamp"] < min(end, cursor)),
                key=lambda i: i["timestamp"],
                reverse=True,
            )
        page = found[:size]
        while len(page) < len(found) and found[len(page)]["timestamp"] == page[-1]["timestamp"]:
            page.append(found[len(page)])  # never split one millisecond across pages
        more = len(page) < len(found)
        return 200, {
            "code": 0,
            "msg": "ok",
            "deviceStatusList": page,
            "page_timestamp": str(page[-1]["timestamp"]) if more else "",
        }
