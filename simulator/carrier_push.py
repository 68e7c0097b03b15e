"""A faithful peer for the carriers' IoT platforms: China Telecom CTWing/AEP subscription pushes and
China Mobile OneNET HTTP pushes, delivering Music Square's NB-IoT detectors and manhole covers.

Built from docs/standards/carrier-iot-push.md and its sources (CTWing push rules dyts/103,
the OneNET HTTP-push developer manual and the official OneNET receiver samples), never from the
hub's receiver. What the platforms do, and so what this peer does:

- CTWing POSTs one JSON message per event (`dataReport`, `deviceOnlineOfflineReport`). Only HTTP
  200 is success; a failed message is retried at most 3 times; a receiver with more than 100
  consecutive failures, or more than 10 % failed pushes in the last 10 s, is put in a 1-minute
  cool-down during which messages are not pushed at all (lost unless fetched by API).
- OneNET first verifies the URL with `GET ?msg=&nonce=&signature=` (signature =
  Base64(MD5(token + nonce + msg))) and expects the bare `msg` back; then POSTs
  `{"msg": …, "msg_signature": …, "nonce": …}` or, in secure mode, `{"enc_msg": …}` (AES-256-CBC,
  key = Base64Decode(EncodingAESKey + "="), IV = key[:16], PKCS#7, 16 random bytes + 4-byte
  length + msg). Anything but 200 is re-sent.
- Both re-send identical messages (duplicates) and deliver out of order.

The fleet: the smoke detectors (CTWing object model: `payload.serviceData`), gas detectors (CTWing
transparent product: base64 `APPdata` frame) and manhole covers (OneNET datapoints) of Music
Square, derived from the same community seed as the MQTT simulator, with Luhn-valid IMEIs.
`registry_csv()` is the installer's commissioning list (IMEI → the hub's device and household).

Run it: `python -m simulator.carrier_push --ctwing-url … --onenet-url … --onenet-token … --rate 50
--duration 10 --truth truth.jsonl`. Last line: `carrier push: N sent, A accepted (HTTP 200), R retried`.
With `--ctwing-app-key KEY` (secret in CTWING_APP_SECRET) it also serves CTWing's history API
(simulator/ctwing_api.py) over every uplink, pushed or lost to the cool-down, `--linger` seconds
past the last push.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import heapq
import http.client
import io
import json
import os
import queue
import secrets
import string
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from random import Random
from typing import IO, Any
from urllib.parse import quote, urlsplit

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from simulator.community import Community
from simulator.ctwing_api import CtwingPlatform
from simulator.devices import DeviceFleet

CTWING_TENANT = "2000031187"
CTWING_SMOKE_PRODUCT = "15061937"
CTWING_GAS_PRODUCT = "15061938"
ONENET_MANHOLE_PRODUCT = "427751"
# The synthetic gas-detector frame (the standard's §4): AA | kind | %LEL×10 (u16 BE) | level |
# battery % | RSRP (i8) | checksum (sum of the preceding bytes mod 256). kind 1 = periodic
# report, 2 = alarm report; level 0 normal, 1 low alarm, 2 high alarm.
GAS_FRAME = struct.Struct(">BBHBBbB")
COVER_STATES = {"closed": 0, "open": 1, "tilted": 2}


# --- the fleet -----------------------------------------------------------------------------------


def luhn_digit(body: str) -> str:
    """The Luhn check digit of an IMEI's first 14 digits."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


@dataclass(frozen=True)
class CarrierDevice:
    """One NB-IoT device as its carrier knows it, and the hub device it is installed as."""

    carrier: str  # ctwing | onenet
    kind: str  # smoke | gas | manhole
    hub_device_id: str
    imei: str
    imsi: str
    carrier_device_id: str  # CTWing: 32 hex chars; OneNET: a numeric dev_id
    product_id: str
    info: dict[str, Any] = field(default_factory=dict, hash=False)  # household, building, unit | cover_type


def _digits(rng: Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def carrier_fleet(seed: int = 7) -> list[CarrierDevice]:
    """Music Square's NB-IoT devices: its detectors through CTWing, its covers through OneNET."""
    return list(_fleet(seed))


@cache
def _fleet(seed: int) -> tuple[CarrierDevice, ...]:  # building the community takes a second
    fleet = DeviceFleet(Community(seed=seed))
    rng = Random(f"{seed}:carrier-fleet")
    devices = []
    for d in fleet.detectors:
        body = "86" + _digits(rng, 12)
        kind = str(d.info["detector"])
        product = CTWING_SMOKE_PRODUCT if kind == "smoke" else CTWING_GAS_PRODUCT
        devices.append(
            CarrierDevice(
                "ctwing", kind, d.device_id, body + luhn_digit(body), "46011" + _digits(rng, 10),
                f"{rng.getrandbits(128):032x}", product, dict(d.info),
            )
        )  # fmt: skip
    for c in fleet.covers:
        body = "86" + _digits(rng, 12)
        devices.append(
            CarrierDevice(
                "onenet", "manhole", c.device_id, body + luhn_digit(body), "46004" + _digits(rng, 10),
                str(rng.randrange(500_000_000, 999_999_999)), ONENET_MANHOLE_PRODUCT, dict(c.info),
            )
        )  # fmt: skip
    return tuple(devices)


REGISTRY_COLUMNS = (
    "carrier", "product_id", "carrier_device_id", "imei", "device_id", "household_id", "building", "unit",
    "detector", "cover_type",
)  # fmt: skip


def registry_csv(devices: Iterable[CarrierDevice]) -> str:
    """The installer's commissioning list: which carrier device is which hub device, in whose home."""
    out = io.StringIO()
    writer = csv.DictWriter(out, REGISTRY_COLUMNS)
    writer.writeheader()
    for d in devices:
        writer.writerow(
            {
                "carrier": d.carrier, "product_id": d.product_id, "carrier_device_id": d.carrier_device_id,
                "imei": d.imei, "device_id": d.hub_device_id, "household_id": d.info.get("household_id", ""),
                "building": d.info.get("building", ""), "unit": d.info.get("unit", ""),
                "detector": d.kind if d.kind != "manhole" else "", "cover_type": d.info.get("cover_type", ""),
            }
        )  # fmt: skip
    return out.getvalue()


# --- reports and their wire formats --------------------------------------------------------------


@dataclass
class Report:
    """One uplink of one device: what it measured (the ground truth) and when."""

    device: CarrierDevice
    event_ms: int
    sn: int  # the device's uplink sequence number (CTWing upPacketSN)
    values: dict[str, Any]
    online: bool | None = None  # an online/offline report instead of data

    @property
    def key(self) -> str:
        return f"{self.device.hub_device_id}:{self.sn}" + ("" if self.online is None else f":status@{self.event_ms}")


def reports(devices: list[CarrierDevice], start_ms: int, count: int, seed: int = 1, alarm_rate: float = 0.02,
            offline_rate: float = 0.0, spacing_ms: int = 1000) -> Iterator[Report]:  # fmt: skip
    """`count` reports, devices taking turns, event times `spacing_ms` apart per round."""
    rng = Random(seed)
    sn = {d.hub_device_id: rng.randrange(1, 500) for d in devices}
    alarmed: set[str] = set()
    for i in range(count):
        d = devices[i % len(devices)]
        at = start_ms + (i // len(devices)) * spacing_ms + i % len(devices)
        if rng.random() < offline_rate:  # no uplink sequence number: not an uplink of the device's
            yield Report(d, at, sn[d.hub_device_id], {}, online=rng.random() < 0.5)
            continue
        sn[d.hub_device_id] += 1
        n = sn[d.hub_device_id]
        # An alarm, once raised, clears at the device's next report.
        alarm = d.hub_device_id not in alarmed and rng.random() < alarm_rate
        alarmed.symmetric_difference_update({d.hub_device_id} if alarm or d.hub_device_id in alarmed else set())
        battery, rsrp = rng.randint(20, 100), rng.randint(-120, -70)
        values: dict[str, Any]
        if d.kind == "smoke":
            values = {"alarm": alarm, "battery_pct": battery, "rsrp": rsrp}
        elif d.kind == "gas":
            lel = round(rng.uniform(15, 45), 1) if alarm else round(abs(rng.gauss(0.5, 0.3)), 1)
            values = {"alarm": alarm, "gas_lel_pct": lel, "battery_pct": battery, "rsrp": rsrp}
        else:
            state = rng.choice(("open", "tilted")) if alarm else "closed"
            tilt = round(rng.uniform(20, 60), 1) if state == "tilted" else round(abs(rng.gauss(0.4, 0.3)), 1)
            values = {"cover_state": state, "tilt_deg": tilt, "battery_pct": battery, "rsrp": rsrp}
        yield Report(d, at, n, values)


def gas_frame(values: dict[str, Any]) -> bytes:
    """The gas detector's transparent uplink frame (the vendor's spec, above)."""
    level = 2 if values["gas_lel_pct"] >= 25 else 1 if values["alarm"] else 0
    head = GAS_FRAME.pack(0xAA, 2 if values["alarm"] else 1, round(values["gas_lel_pct"] * 10), level,
                          values["battery_pct"], values["rsrp"], 0)[:-1]  # fmt: skip
    return head + bytes([sum(head) % 256])


def ctwing_message(r: Report, tenant_id: str = CTWING_TENANT) -> dict[str, Any]:
    """The CTWing subscription push of one report."""
    d = r.device
    if r.online is not None:
        return {
            "timestamp": r.event_ms, "tenantId": tenant_id, "protocol": "lwm2m", "productId": d.product_id,
            "messageType": "deviceOnlineOfflineReport", "eventType": 1 if r.online else 0,
            "deviceId": d.carrier_device_id, "iccid": "8986" + d.imsi[5:] + "0000",
        }  # fmt: skip
    if d.kind == "smoke":
        payload: dict[str, Any] = {
            "serviceId": "smoke_report",
            "serviceData": {
                "Alarm_Status": 2 if r.values["alarm"] else 0, "Battery_Level": r.values["battery_pct"],
                "RSRP": r.values["rsrp"], "SNR": 12, "CSQ": 24, "Cell_ID": 113405952, "IMEI": d.imei,
            },
        }  # fmt: skip
    else:
        payload = {"APPdata": base64.b64encode(gas_frame(r.values)).decode()}
    return {
        "upPacketSN": r.sn, "upDataSN": r.sn % 256, "topic": "v1/up/ad", "timestamp": r.event_ms,
        "tenantId": tenant_id, "serviceId": "", "protocol": "lwm2m", "productId": d.product_id,
        "messageType": "dataReport", "deviceId": d.carrier_device_id, "IMEI": d.imei, "IMSI": d.imsi,
        "payload": payload,
    }  # fmt: skip


def onenet_messages(r: Report) -> list[dict[str, Any]]:
    """The OneNET msg objects of one report: a type-2 status, or one type-1 datapoint per datastream."""
    d, dev_id = r.device, int(r.device.carrier_device_id)
    if r.online is not None:
        return [{"type": 2, "dev_id": dev_id, "status": 1 if r.online else 0, "login_type": 10, "at": r.event_ms,
                 "imei": d.imei}]  # fmt: skip
    v = r.values
    streams = {"cover_state": COVER_STATES[v["cover_state"]], "tilt_angle": v["tilt_deg"],
               "battery": v["battery_pct"], "rsrp": v["rsrp"]}  # fmt: skip
    return [{"type": 1, "dev_id": dev_id, "ds_id": k, "at": r.event_ms, "value": x, "imei": d.imei}
            for k, x in streams.items()]  # fmt: skip


def onenet_signature(token: str, nonce: str, text: str) -> str:
    """Base64(MD5(token + nonce + text)): the URL-verification signature and each push's msg_signature."""
    return base64.b64encode(hashlib.md5((token + nonce + text).encode()).digest()).decode()


def onenet_encrypt(aes_key: str, msg_text: str, rng: Random | None = None) -> str:
    """Secure mode, as the official receiver sample decrypts it."""
    key = base64.b64decode(aes_key + "=")
    body = msg_text.encode()
    plain = (rng.randbytes(16) if rng else os.urandom(16)) + struct.pack(">I", len(body)) + body
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(padded) + enc.finalize()).decode()


def onenet_body(msgs: list[dict[str, Any]], token: str, aes_key: str | None = None) -> bytes:
    """One OneNET POST body: `msg` a single object or an array (several datapoints pushed together)."""
    nonce = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(8))
    msg: Any = msgs[0] if len(msgs) == 1 else msgs
    text = json.dumps(msg, separators=(",", ":"), ensure_ascii=False)
    if aes_key:
        enc = onenet_encrypt(aes_key, text)
        return json.dumps(
            {"enc_msg": enc, "msg_signature": onenet_signature(token, nonce, enc), "nonce": nonce}
        ).encode()
    # The msg text is embedded verbatim, so the signature covers exactly the bytes on the wire.
    sig = json.dumps(onenet_signature(token, nonce, text))
    return f'{{"msg":{text},"msg_signature":{sig},"nonce":"{nonce}"}}'.encode()


# --- delivery ------------------------------------------------------------------------------------


@dataclass
class PushConfig:
    ctwing_url: str = ""
    onenet_url: str = ""
    onenet_token: str = ""
    onenet_aes_key: str | None = None  # 43 characters: secure mode
    onenet_skip_verify: bool = False
    onenet_batch: int = 4  # datapoints per push (OneNET pushes several together as an array)
    onenet_retries: int = 3  # not documented [unverified]: the peer re-sends this often
    rate: float = 50.0  # new messages per second (both carriers together)
    workers: int = 8  # concurrent HTTP connections
    # Not documented by either carrier [unverified]: the attempt timeout, the spacing of retries and
    # the least sample the 10 % rule needs. The standard's choices: 3 s, 0.5 s, 20 attempts.
    timeout_s: float = 3.0
    retry_spacing_s: float = 0.5
    ctwing_retries: int = 3  # "retried at most 3 times" (dyts/103)
    cooldown_seconds: float = 60.0  # "1-minute cool-down"
    cooldown_consecutive: int = 100  # "more than 100 consecutive failures"
    cooldown_rate: float = 0.10  # "more than 10 % of pushes failed in the last 10 s"
    cooldown_window: float = 10.0
    cooldown_min_sample: int = 20
    dup_rate: float = 0.0  # the platform re-sends an identical message
    reorder_rate: float = 0.0  # adjacent messages swapped
    seed: int = 1


@dataclass
class Delivery:
    """One message to deliver, and what became of it."""

    key: str  # the report's ground-truth key (device:sn); a OneNET batch joins several
    carrier: str
    body: bytes
    dup: bool = False
    attempts: int = 0
    result: str = "pending"  # accepted | failed | failed_cooldown | lost_cooldown
    last_status: int | None = None
    latencies_ms: list[float] = field(default_factory=list)


@dataclass
class PushStats:
    sent: int = 0  # messages (not attempts)
    accepted: int = 0
    retried: int = 0
    failed: int = 0
    lost_cooldown: int = 0
    cooldowns: int = 0
    verified: bool | None = None
    latencies_ms: list[float] = field(default_factory=list)  # every attempt answered 200


class CtwingBreaker:
    """CTWing's rule for a failing receiver: >N consecutive failures or >rate failed in the window →
    cool-down. Counted per push attempt (the sources say "failures"; attempts is our reading)."""

    def __init__(self, cfg: PushConfig) -> None:
        self.cfg, self.lock = cfg, threading.Lock()
        self.consecutive, self.until = 0, 0.0
        self.window: deque[tuple[float, bool]] = deque()
        self.started = 0

    def cooling(self) -> bool:
        return time.monotonic() < self.until

    def record(self, ok: bool) -> bool:
        """Record one attempt; True when it put the receiver into cool-down."""
        cfg, now = self.cfg, time.monotonic()
        with self.lock:
            self.consecutive = 0 if ok else self.consecutive + 1
            self.window.append((now, ok))
            while self.window and self.window[0][0] < now - cfg.cooldown_window:
                self.window.popleft()
            failed = sum(1 for _, good in self.window if not good)
            tripped = self.consecutive > cfg.cooldown_consecutive or (
                len(self.window) >= cfg.cooldown_min_sample and failed / len(self.window) > cfg.cooldown_rate
            )
            if tripped and now >= self.until:
                self.until, self.consecutive = now + cfg.cooldown_seconds, 0
                self.window.clear()
                self.started += 1
                return True
            return False


class CarrierPusher:
    """Pushes deliveries at the configured rate with the carriers' retry rules; records ground truth."""

    def __init__(self, cfg: PushConfig, truth: IO[str] | None = None, platform: CtwingPlatform | None = None) -> None:
        self.cfg, self.truth = cfg, truth
        # The platform's store behind its history API (simulator/ctwing_api.py): it holds every uplink
        # a device sent, pushed or not, so what a cool-down kept back can be fetched again.
        self.platform = platform
        self.stats = PushStats()
        self.breaker = CtwingBreaker(cfg)
        self._jobs: queue.Queue[Delivery | None] = queue.Queue()
        self._retries: list[tuple[float, int, Delivery]] = []
        self._lock = threading.Lock()
        self._pending = 0
        self._rng = Random(cfg.seed)

    def _write(self, line: dict[str, Any]) -> None:
        if self.truth is not None:
            with self._lock:
                self.truth.write(json.dumps(line, ensure_ascii=False) + "\n")

    # OneNET URL verification ----------------------------------------------------------------

    def verify_onenet(self) -> bool:
        """GET url?msg&nonce&signature; the receiver must answer 200 with the bare msg."""
        cfg = self.cfg
        msg = secrets.token_urlsafe(12)
        nonce = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(8))
        sig = onenet_signature(cfg.onenet_token, nonce, msg)
        query = f"msg={quote(msg)}&nonce={nonce}&signature={quote(sig, safe='')}"
        url = f"{cfg.onenet_url}{'&' if '?' in cfg.onenet_url else '?'}{query}"
        status, body, _ = _request("GET", url, None, cfg.timeout_s)
        ok = status == 200 and body.decode(errors="replace").strip() == msg
        self.stats.verified = ok
        self._write({"line": "onenet_url_verification", "status": status, "ok": ok})
        return ok

    # deliveries -----------------------------------------------------------------------------

    def deliveries(self, items: Iterable[Report]) -> list[Delivery]:
        """Wire messages for the reports, with the stream faults (duplicates, reordering) applied."""
        cfg, rng, out = self.cfg, self._rng, []
        for r in items:
            self._write({"line": "message", "key": r.key, "device": r.device.hub_device_id, "imei": r.device.imei,
                         "carrier": r.device.carrier, "event_ms": r.event_ms, "sn": r.sn, "online": r.online,
                         "values": r.values})  # fmt: skip
            if r.device.carrier == "ctwing":
                body = json.dumps(ctwing_message(r), separators=(",", ":"), ensure_ascii=False).encode()
                out.append(Delivery(r.key, "ctwing", body))
                continue
            msgs, size = onenet_messages(r), max(1, cfg.onenet_batch)
            for i in range(0, len(msgs), size):
                out.append(
                    Delivery(r.key, "onenet", onenet_body(msgs[i : i + size], cfg.onenet_token, cfg.onenet_aes_key))
                )
        for i in range(len(out) - 1):
            if rng.random() < cfg.reorder_rate:
                out[i], out[i + 1] = out[i + 1], out[i]
        with_dups = []
        for d in out:
            with_dups.append(d)
            if rng.random() < cfg.dup_rate:
                with_dups.append(Delivery(d.key, d.carrier, d.body, dup=True))
        return with_dups

    def push(self, items: list[Delivery]) -> PushStats:
        """Deliver at `rate` per second with `workers` connections; returns when all are settled."""
        cfg = self.cfg
        threads = [threading.Thread(target=self._worker, daemon=True) for _ in range(cfg.workers)]
        for t in threads:
            t.start()
        start = time.monotonic()
        for i, d in enumerate(items):
            self._release_retries()
            wait = start + i / cfg.rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self.stats.sent += 0 if d.dup else 1
            if d.carrier == "ctwing" and not d.dup and self.platform is not None:
                self.platform.record(json.loads(d.body))  # received from the device, pushed or not
            if d.carrier == "ctwing" and self.breaker.cooling():
                d.result = "lost_cooldown"  # not pushed at all during the cool-down
                self._settle(d)
                continue
            with self._lock:
                self._pending += 1
            self._jobs.put(d)
        while True:
            with self._lock:
                if not self._pending:
                    break
            self._release_retries()
            time.sleep(0.01)
        for _ in threads:
            self._jobs.put(None)
        for t in threads:
            t.join()
        return self.stats

    def _release_retries(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = []
            while self._retries and self._retries[0][0] <= now:
                due.append(heapq.heappop(self._retries)[2])
        for d in due:
            self._jobs.put(d)

    def _worker(self) -> None:
        conns: dict[str, http.client.HTTPConnection] = {}
        while (d := self._jobs.get()) is not None:
            url = self.cfg.ctwing_url if d.carrier == "ctwing" else self.cfg.onenet_url
            if d.carrier == "ctwing" and self.breaker.cooling():
                d.result = "failed_cooldown"
                self._done(d)
                continue
            t0 = time.perf_counter()
            status, _, conn = _request("POST", url, d.body, self.cfg.timeout_s, conns.get(url))
            if conn is None:
                conns.pop(url, None)
            else:
                conns[url] = conn
            d.attempts += 1
            d.last_status = status
            ok = status == 200
            if ok:
                ms = (time.perf_counter() - t0) * 1000
                d.latencies_ms.append(ms)
                with self._lock:
                    self.stats.latencies_ms.append(ms)
            if d.carrier == "ctwing" and self.breaker.record(ok):
                self.stats.cooldowns += 1
                self._write({"line": "cooldown", "seconds": self.cfg.cooldown_seconds})
            retries = self.cfg.ctwing_retries if d.carrier == "ctwing" else self.cfg.onenet_retries
            if ok:
                d.result = "accepted"
                self._done(d)
            elif d.attempts > retries:
                d.result = "failed"
                self._done(d)
            else:
                with self._lock:
                    self.stats.retried += 1 if d.attempts == 1 else 0
                    heapq.heappush(self._retries, (time.monotonic() + self.cfg.retry_spacing_s, id(d), d))
        for conn in conns.values():
            conn.close()

    def _settle(self, d: Delivery) -> None:
        s = self.stats
        with self._lock:
            if d.result == "accepted":
                s.accepted += 1
            elif d.result == "lost_cooldown":
                s.lost_cooldown += 1
            else:
                s.failed += 1
        self._write({"line": "delivery", "key": d.key, "carrier": d.carrier, "dup": d.dup, "result": d.result,
                     "attempts": d.attempts, "last_status": d.last_status})  # fmt: skip

    def _done(self, d: Delivery) -> None:
        self._settle(d)
        with self._lock:
            self._pending -= 1


Conn = http.client.HTTPConnection


def _request(
    method: str, url: str, body: bytes | None, timeout: float, conn: Conn | None = None
) -> tuple[int, bytes, Conn | None]:
    """One HTTP attempt on a kept-alive connection: (status, body, connection to keep); status 0 =
    no answer (refused, reset, timed out)."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = {"Content-Type": "application/json"} if body is not None else {}
    for fresh in (False, True):
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, data, None if resp.will_close else conn
        except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
            if fresh:  # a kept-alive connection the server had closed gets one fresh try, no more
                conn.close()
                return 0, b"", None
        except (OSError, http.client.HTTPException):
            conn.close()
            return 0, b"", None
    return 0, b"", None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--ctwing-url", default="")
    p.add_argument("--onenet-url", default="")
    p.add_argument("--onenet-token", default=os.environ.get("ONENET_TOKEN", ""))
    p.add_argument("--onenet-aes-key", default=None)
    p.add_argument("--onenet-skip-verify", action="store_true")
    p.add_argument("--onenet-batch", type=int, default=4)
    p.add_argument("--onenet-retries", type=int, default=3)
    p.add_argument("--ctwing-retries", type=int, default=3)
    p.add_argument("--cooldown-seconds", type=float, default=60.0)
    p.add_argument("--cooldown-consecutive", type=int, default=100)
    p.add_argument("--cooldown-rate", type=float, default=0.10)
    p.add_argument("--cooldown-window", type=float, default=10.0)
    p.add_argument("--cooldown-min-sample", type=int, default=20)
    p.add_argument("--dup-rate", type=float, default=0.0)
    p.add_argument("--reorder-rate", type=float, default=0.0)
    p.add_argument("--offline-rate", type=float, default=0.0)
    p.add_argument("--rate", type=float, default=50.0)
    p.add_argument("--duration", type=float, default=10.0)
    # A device's reports a round apart (all devices at `rate`), not a second: event times keep up with
    # the clock however long it runs (the demo's live pushes), and no device looks silent.
    p.add_argument("--realtime", action="store_true", help="space each device's reports a whole round apart")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--truth", type=argparse.FileType("w", encoding="utf-8"), default=None)
    p.add_argument("--registry-out", type=argparse.FileType("w", encoding="utf-8"), default=None)
    # CTWing's history API (simulator/ctwing_api.py): what the inbox re-fetches after a cool-down.
    p.add_argument("--ctwing-app-key", default="", help="serve the history API with this app key")
    p.add_argument("--ctwing-app-secret", default=os.environ.get("CTWING_APP_SECRET", ""))
    p.add_argument("--ctwing-master-key", default=os.environ.get("CTWING_MASTER_KEY", ""))
    p.add_argument("--linger", type=float, default=0.0, help="keep serving the history API this long after")
    a = p.parse_args(argv)
    cfg = PushConfig(
        ctwing_url=a.ctwing_url, onenet_url=a.onenet_url, onenet_token=a.onenet_token,
        onenet_aes_key=a.onenet_aes_key, onenet_skip_verify=a.onenet_skip_verify, onenet_batch=a.onenet_batch,
        onenet_retries=a.onenet_retries, ctwing_retries=a.ctwing_retries, cooldown_seconds=a.cooldown_seconds,
        cooldown_consecutive=a.cooldown_consecutive, cooldown_rate=a.cooldown_rate,
        cooldown_window=a.cooldown_window, cooldown_min_sample=a.cooldown_min_sample, dup_rate=a.dup_rate,
        reorder_rate=a.reorder_rate, rate=a.rate, seed=a.seed,
    )  # fmt: skip
    devices = carrier_fleet(a.seed)
    if a.registry_out:
        a.registry_out.write(registry_csv(devices))
        a.registry_out.close()
    carriers = {"ctwing"} if a.ctwing_url else set()
    platform = None
    if a.ctwing_app_key:
        platform = CtwingPlatform(a.ctwing_app_key, a.ctwing_app_secret, a.ctwing_master_key).start()
        print(f"carrier push: CTWing history API at {platform.url}", file=sys.stderr)
    pusher = CarrierPusher(cfg, a.truth, platform)
    if a.onenet_url and (a.onenet_skip_verify or pusher.verify_onenet()):
        carriers.add("onenet")
    elif a.onenet_url:
        print("carrier push: OneNET URL verification failed; OneNET pushes disabled", file=sys.stderr)
    chosen = [d for d in devices if d.carrier in carriers]
    if not chosen:
        print("carrier push: nothing to push (give --ctwing-url and/or --onenet-url)", file=sys.stderr)
        return 2
    spacing_ms = int(len(chosen) / a.rate * 1000) if a.realtime else 1000
    items = pusher.deliveries(reports(chosen, int(time.time() * 1000), int(a.rate * a.duration), a.seed,
                                      offline_rate=a.offline_rate, spacing_ms=spacing_ms))  # fmt: skip
    s = pusher.push(items)
    if a.truth:
        a.truth.write(
            json.dumps({"line": "summary", **{k: v for k, v in vars(s).items() if k != "latencies_ms"}}) + "\n"
        )
        a.truth.close()
    print(f"carrier push: {s.sent} sent, {s.accepted} accepted (HTTP 200), {s.retried} retried")
    if platform is not None:
        time.sleep(a.linger)  # the inbox may still be fetching what the cool-down kept back
        platform.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
