"""CTWing's history query: what a cool-down (or the inbox's own outage) kept from being pushed.

CTWing retries a failed push at most three times and then puts a failing receiver into a
1-minute cool-down in which nothing is pushed: "lost unless fetched by API" (dyts/103, via
docs/standards/carrier-iot-push.md §1). The API is the AEP open API's device-status history,
`POST <api>/aep_device_status/getDeviceStatusHisInPage` (version 20190928013337) with
`productId`, `deviceId`, `begin_timestamp`, `end_timestamp` (ms), `page_size`, `page_timestamp`,
answering `code`, `msg`, `deviceStatusList` and `page_timestamp` (empty: last page). Every call is
signed: headers `application`, `timestamp`, `version`, `signature` = Base64(HMAC-SHA1(app
secret, "application:<key>\\ntimestamp:<ts>\\n" + body + "\\n")) and `MasterKey`. Sources: the AEP
API reference as carried by the public SDKs (ctwing-sdk-browserify `DataOperate.QueryPage`,
`BaseOperate.sign`; IoT-Toolkit `TelecomDeviceDataService`).

Where the sources are ambiguous we chose (and simulator/ctwing_api.py, the peer, serves the same):
- items are the stored uplinks: `deviceId`, `timestamp` (the platform's receive time — the same
  value the push carried), `serviceId`, `payload`; they carry no `upPacketSN`, so the processor
  de-duplicates CTWing data reports by (device, platform timestamp) as well as by sequence number;
- pages run newest first, `page_timestamp` and `end_timestamp` are exclusive bounds and the
  returned `page_timestamp` is the page's oldest timestamp; we page until it comes back empty;
- a page holds at most 100 items.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import requests

from kernel.errors import RetriableError

HISTORY_PATH = "/aep_device_status/getDeviceStatusHisInPage"
HISTORY_VERSION = "20190928013337"
PAGE_SIZE = 100
MAX_PAGES = 1000  # 100,000 uplinks of one device in one window: far past any outage we re-fetch


class CtwingHistory:
    """A signed client of the AEP history query (one app key, one product's MasterKey each call)."""

    def __init__(
        self, api_url: str, app_key: str, app_secret: str, master_key: str = "", timeout: float = 10.0
    ) -> None:
        self.url = api_url.rstrip("/") + HISTORY_PATH
        self.app_key, self._secret, self._master_key, self.timeout = app_key, app_secret, master_key, timeout
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def _headers(self, body: bytes) -> dict[str, str]:
        stamp = str(int(time.time() * 1000))
        text = f"application:{self.app_key}\ntimestamp:{stamp}\n".encode() + body + b"\n"
        signature = base64.b64encode(hmac.new(self._secret.encode(), text, hashlib.sha1).digest()).decode()
        headers = {"application": self.app_key, "timestamp": stamp, "version": HISTORY_VERSION,
                   "signature": signature, "Content-Type": "application/json;charset=UTF-8"}  # fmt: skip
        if self._master_key:
            headers["MasterKey"] = self._master_key
        return headers

    def uplinks(self, product_id: str, device_id: str, begin_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """Every stored uplink of one device with begin_ms <= timestamp < end_ms (any order).

        RetriableError (naming no device) when the platform cannot be reached or refuses: the
        caller tries again later.
        """
        found: list[dict[str, Any]] = []
        cursor = ""
        for _ in range(MAX_PAGES):
            query = {"productId": product_id, "deviceId": device_id, "begin_timestamp": begin_ms,
                     "end_timestamp": end_ms, "page_size": PAGE_SIZE, "page_timestamp": cursor}  # fmt: skip
            body = json.dumps(query, separators=(",", ":")).encode()
            try:
                answer = self._session.post(self.url, data=body, headers=self._headers(body), timeout=self.timeout)
                page = answer.json()
            except (requests.RequestException, ValueError) as exc:
                raise RetriableError(f"CTWing history query failed ({type(exc).__name__})") from None
            if answer.status_code != 200 or not isinstance(page, dict) or page.get("code") not in (0, "0"):
                code = page.get("code") if isinstance(page, dict) else None
                raise RetriableError(f"CTWing history query refused (HTTP {answer.status_code}, code {code})")
            items = page.get("deviceStatusList") or []
            found += [i for i in items if isinstance(i, dict)]
            cursor = str(page.get("page_timestamp") or "")
            if not cursor:
                return found
        raise RetriableError("CTWing history query: too many pages for one device")
