"""A public-security upper VIID platform (视图库, GA/T 1400.4) on loopback, for tests, benchmarks
and the demo: built from the standard as summarised in docs/standards/GAT1400-cascade.md
(§3 system interfaces, §4 cascade, §8 peer behaviour), never from the hub's client.

Server side (the lower platform calls it):
  POST /VIID/System/Register, /VIID/System/UnRegister   HTTP Digest (simulator/viid_digest.py)
  POST /VIID/System/Keepalive                            User-Identify of a registered lower
  GET  /VIID/System/Time                                 SystemTimeObject
  POST /VIID/SubscribeNotifications                      the ReceiveAddr of its subscriptions
Client side (it calls the lower): `subscribe` (POST /VIID/Subscribes), `cancel` (PUT
/VIID/Subscribes/<ID>), `list_subscriptions`, `directory` (GET /VIID/APEs and /VIID/Tollgates).

What it received is kept for tests: accepted notifications and vehicles, duplicates (a
NotificationID delivered again after its acknowledgement was delivered; a redelivery after a
5xx or a dropped acknowledgement is not one), malformed ones. Its data survives `restart()`
(a restarted platform keeps its database) but registrations and nonces do not.
Faults: `fail_every` (HTTP 500 before storing), `drop_every` (store, then close without an
answer), `restart()` and `disconnect()` on demand.

    python -m simulator.viid_upper --port 9101 --subscribe-to http://127.0.0.1:9102
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import requests

from simulator.viid_digest import DigestGate, Verdict
from simulator.viid_records import notification_problems, vehicle_problems, vehicles_of

LOCAL = ZoneInfo("Asia/Shanghai")
VIID_JSON = "application/VIID+JSON"
NOTIFY_PATH = "/VIID/SubscribeNotifications"
# ResponseStatus codes (GA/T 1400.4): 0 OK, 4 invalid operation, 7 invalid JSON format, 8 invalid JSON content.
OK, INVALID_OPERATION, BAD_JSON, BAD_CONTENT = 0, 4, 7, 8


def local_now() -> str:
    return datetime.now(LOCAL).strftime("%Y%m%d%H%M%S")


def status(url: str, code: int, text: str, ident: str = "") -> dict[str, Any]:
    return {"RequestURL": url, "StatusCode": code, "StatusString": text, "Id": ident, "LocalTime": local_now()}


@dataclass
class UpperConfig:
    upper_id: str = "31000000005030000001"  # type 503: 视图库
    lower_id: str = "31010700005030000001"  # the one lower platform it admits (Digest username)
    password: str = "viid-secret"
    realm: str = "VIID"
    nonce_ttl: float = 30.0
    registration_ttl: float = 300.0  # one vendor documents ~5 minutes, refreshed by keepalives
    strict_content_type: bool = True  # 415 on anything but application/VIID+JSON
    image_required: bool = False  # the hub sends no images: waived by agreement (see GAT1400-cascade.md §5)
    plate_opener: Callable[[str], str | None] | None = None  # opens a PlateNoSealed sealed to its key
    fail_every: int = 0  # every Kth notification request: HTTP 500, nothing stored
    drop_every: int = 0  # every Mth: stored, then the connection is closed without an answer
    # Called (outside the lock) with each newly accepted notification once its acknowledgement was
    # delivered: what the demo keeps as the platform's record of the cascade.
    on_acknowledged: Callable[[list[dict[str, Any]]], None] | None = None


@dataclass
class Received:
    """Everything the platform accepted (its database) and what it refused."""

    notifications: dict[str, list[str]] = field(default_factory=dict)  # NotificationID → MotorVehicleIDs
    vehicles: dict[str, dict[str, Any]] = field(default_factory=dict)  # MotorVehicleID → object
    acked: set[str] = field(default_factory=set)  # NotificationIDs whose acknowledgement was delivered
    duplicates: int = 0
    redeliveries: int = 0  # after a 5xx or a dropped acknowledgement: allowed
    malformed: int = 0
    problems: dict[str, int] = field(default_factory=dict)  # field → count
    refused_subscription: int = 0
    accept_times: dict[str, float] = field(default_factory=dict)  # MotorVehicleID → time.time()
    registrations: int = 0
    keepalives: int = 0
    unregistrations: int = 0
    requests: int = 0
    failed: int = 0
    dropped: int = 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    platform: UpperPlatform

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Silent: a traceback could carry a plate."""

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.platform.lock:
            self.platform.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.platform.lock:
            self.platform.connections.discard(request)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "VIID/1.0"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """No access log."""

    @property
    def platform(self) -> UpperPlatform:
        return self.server.platform  # type: ignore[attr-defined, no-any-return]

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, code: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> bool:
        body = json.dumps(payload, ensure_ascii=False).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", VIID_JSON + ";charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            return False
        return True

    def do_GET(self) -> None:
        if self.path == "/VIID/System/Time":
            self.send_json(200, {"SystemTimeObject": self.platform.system_time()})
        else:
            self.send_json(404, {"ResponseStatusObject": status(self.path, INVALID_OPERATION, "no such resource")})

    def do_POST(self) -> None:
        body = self._body()
        platform = self.platform
        with platform.lock:
            platform.received.requests += 1
        if self.path in ("/VIID/System/Register", "/VIID/System/UnRegister"):
            platform.handle_register(self, body, register=self.path.endswith("/Register"))
        elif self.path == "/VIID/System/Keepalive":
            platform.handle_keepalive(self, body)
        elif self.path == NOTIFY_PATH:
            platform.handle_notifications(self, body)
        else:
            self.send_json(404, {"ResponseStatusObject": status(self.path, INVALID_OPERATION, "no such resource")})

    def json_body(self, body: bytes) -> Any:
        try:
            return json.loads(body)
        except ValueError:
            return None


class UpperPlatform:
    """The upper platform: an HTTP server on `port` (0: a free one) and its client operations."""

    def __init__(self, config: UpperConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or UpperConfig()
        self.host = host
        self.port = port
        self.lock = threading.RLock()
        self.connections: set[socket.socket] = set()
        self.digest = DigestGate(self.config.realm, {self.config.lower_id: self.config.password}, self.config.nonce_ttl)
        self.received = Received()
        self.registered: dict[str, float] = {}  # lower id → registration expiry (monotonic)
        self.subscriptions: dict[str, dict[str, Any]] = {}  # SubscribeID → SubscribeObject it sent
        self.restarts = 0
        self._notify_requests = 0
        self._serial = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._session = requests.Session()

    # --- life cycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def receive_addr(self) -> str:
        return self.url + NOTIFY_PATH

    def start(self) -> UpperPlatform:
        server = _Server((self.host, self.port), _Handler)
        server.platform = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.01,), name="viid-upper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        self.disconnect()
        if self._thread is not None:
            self._thread.join(5)

    def disconnect(self) -> int:
        """Close every open connection now (a network cut or a load balancer reset)."""
        with self.lock:
            open_ = list(self.connections)
            self.connections.clear()
        for conn in open_:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        return len(open_)

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop, lose registrations and nonces (memory), keep the received data (database), start again."""
        self.stop()
        with self.lock:
            self.registered.clear()
            self.restarts += 1
        self.digest.forget()
        if down_seconds:
            time.sleep(down_seconds)
        self.start()

    def __enter__(self) -> UpperPlatform:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
        self._session.close()

    # --- server side ----------------------------------------------------------------------

    def system_time(self) -> dict[str, str]:
        # TimeMode is not documented in the sources read [unverified]: "1" as the summary's peer sends.
        return {"VIIDServerID": self.config.upper_id, "TimeMode": "1", "LocalTime": local_now(), "TimeZone": "+08:00"}

    def _registered(self, handler: _Handler) -> str | None:
        ident = handler.headers.get("User-Identify")
        with self.lock:
            expiry = self.registered.get(ident or "")
            if expiry is None or expiry < time.monotonic():
                return None
            # Any successful request refreshes the registration (one vendor's rule [unverified]).
            self.registered[ident or ""] = time.monotonic() + self.config.registration_ttl
        return ident

    def _content_type_ok(self, handler: _Handler) -> bool:
        kind = (handler.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if not self.config.strict_content_type or kind == VIID_JSON.lower():
            return True
        handler.send_json(415, {"ResponseStatusObject": status(handler.path, BAD_CONTENT, "Content-Type")})
        return False

    def handle_register(self, handler: _Handler, body: bytes, register: bool) -> None:
        verdict = self.digest.check("POST", handler.path, handler.headers.get("Authorization"))
        if verdict is not Verdict.OK:
            challenge = self.digest.challenge(stale=verdict is Verdict.STALE)
            reply = status(handler.path, INVALID_OPERATION, "unauthorized")
            handler.send_json(401, {"ResponseStatusObject": reply}, {"WWW-Authenticate": challenge})
            return
        if not self._content_type_ok(handler):
            return
        key = "RegisterObject" if register else "UnRegisterObject"
        data = handler.json_body(body)
        device = (
            data.get(key, {}).get("DeviceID") if isinstance(data, dict) and isinstance(data.get(key), dict) else None
        )
        if device != self.config.lower_id:
            handler.send_json(200, {"ResponseStatusObject": status(handler.path, BAD_CONTENT, key, str(device or ""))})
            return
        with self.lock:
            if register:
                self.registered[device] = time.monotonic() + self.config.registration_ttl
                self.received.registrations += 1
            else:
                self.registered.pop(device, None)
                self.received.unregistrations += 1
        handler.send_json(200, {"ResponseStatusObject": status(handler.path, OK, "OK", device)})

    def handle_keepalive(self, handler: _Handler, body: bytes) -> None:
        if not handler.headers.get("User-Identify"):
            handler.send_json(400, {"ResponseStatusObject": status(handler.path, INVALID_OPERATION, "User-Identify")})
            return
        if not self._content_type_ok(handler):
            return
        ident = self._registered(handler)
        if ident is None:
            handler.send_json(401, {"ResponseStatusObject": status(handler.path, INVALID_OPERATION, "not registered")})
            return
        with self.lock:
            self.received.keepalives += 1
        handler.send_json(200, {"ResponseStatusObject": status(handler.path, OK, "OK", ident)})

    def handle_notifications(self, handler: _Handler, body: bytes) -> None:
        if not handler.headers.get("User-Identify"):
            handler.send_json(400, {"ResponseStatusObject": status(handler.path, INVALID_OPERATION, "User-Identify")})
            return
        if not self._content_type_ok(handler):
            return
        if self._registered(handler) is None:
            handler.send_json(401, {"ResponseStatusObject": status(handler.path, INVALID_OPERATION, "not registered")})
            return
        with self.lock:
            self._notify_requests += 1
            n = self._notify_requests
        if self.config.fail_every and n % self.config.fail_every == 0:
            with self.lock:
                self.received.failed += 1
            handler.send_json(500, {"ResponseStatusObject": status(handler.path, 9, "system busy")})
            return
        data = handler.json_body(body)
        wrapper = data.get("SubscribeNotificationListObject") if isinstance(data, dict) else None
        items = wrapper.get("SubscribeNotificationObject") if isinstance(wrapper, dict) else None
        if not isinstance(items, list):
            code = BAD_JSON if data is None else BAD_CONTENT
            handler.send_json(
                200, {"ResponseStatusObject": status(handler.path, code, "SubscribeNotificationListObject")}
            )
            return
        replies, accepted_now, accepted_items = [], [], []
        with self.lock:
            for item in items:
                code, text, nid = self._accept(item)
                replies.append(status(handler.path, code, text, nid))
                if code == OK:
                    accepted_now.append(nid)
                    accepted_items.append(item)
        if self.config.drop_every and n % self.config.drop_every == 0:
            with self.lock:
                self.received.dropped += 1
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        delivered = handler.send_json(200, {"ResponseStatusListObject": {"ResponseStatusObject": replies}})
        if delivered:
            with self.lock:
                fresh = [
                    i for i, nid in zip(accepted_items, accepted_now, strict=True) if nid not in self.received.acked
                ]
                self.received.acked.update(accepted_now)
            if fresh and self.config.on_acknowledged is not None:
                self.config.on_acknowledged(fresh)

    def _accept(self, item: Any) -> tuple[int, str, str]:
        """One notification, under the lock: (StatusCode, StatusString, NotificationID)."""
        rec = self.received
        nid = str(item.get("NotificationID", "")) if isinstance(item, dict) else ""
        problems = notification_problems(item)
        vehicles = vehicles_of(item) if isinstance(item, dict) else None
        if vehicles is None:
            problems.append("MotorVehicleObjectList")
        for vehicle in vehicles or []:
            problems += vehicle_problems(vehicle, self.config.image_required, self.config.plate_opener)
        ids = [str(v.get("MotorVehicleID")) for v in vehicles or [] if isinstance(v, dict)]
        if not problems and isinstance(item.get("InfoIDs"), str) and item["InfoIDs"].split(",") != ids:
            problems.append("InfoIDs")
        if problems:
            rec.malformed += 1
            for name in problems:
                rec.problems[name] = rec.problems.get(name, 0) + 1
            return BAD_CONTENT, "invalid: " + ",".join(sorted(set(problems))), nid
        subscription = self.subscriptions.get(str(item.get("SubscribeID")))
        if subscription is None or subscription.get("SubscribeStatus") != 0:
            rec.refused_subscription += 1
            return INVALID_OPERATION, "no such active subscription", nid
        if nid in rec.notifications:
            # Accepted before: a duplicate only if its acknowledgement had been delivered. Never stored
            # twice. The standard has no status for a duplicate; it is answered 0 (with the reason in
            # StatusString), so a lower that lost the acknowledgement moves on instead of retrying forever.
            if nid in rec.acked:
                rec.duplicates += 1
                return OK, "duplicate NotificationID: already accepted", nid
            rec.redeliveries += 1
            return OK, "OK", nid
        rec.notifications[nid] = ids
        now = time.time()
        for vehicle in vehicles or []:
            rec.vehicles.setdefault(str(vehicle["MotorVehicleID"]), vehicle)
            rec.accept_times.setdefault(str(vehicle["MotorVehicleID"]), now)
        return OK, "OK", nid

    # --- client side: subscriptions on the lower platform ---------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Content-Type": VIID_JSON, "User-Identify": self.config.upper_id}

    def new_business_id(self, subtype: str) -> str:
        """BusinessObjectIdType (33): 12-digit unit code + 2-digit sub-type + 14-digit time + 5-digit
        serial. The composition is [unverified] (GAT1400-cascade.md §6); lengths are what peers check."""
        return self.config.upper_id[:12] + subtype + local_now() + f"{next(self._serial) % 100000:05d}"

    def subscribe(
        self,
        lower_url: str,
        detail: str = "13",
        resource_class: int = 4,
        resource_uri: str | None = None,
        begin: datetime | None = None,
        end: datetime | None = None,
        title: str = "机动车订阅",
        extra: dict[str, Any] | None = None,
    ) -> tuple[str, int]:
        """POST one SubscribeObject to the lower; (SubscribeID, StatusCode it answered)."""
        begin = begin or datetime.now(LOCAL) - timedelta(minutes=1)
        end = end or datetime.now(LOCAL) + timedelta(days=30)
        sid = self.new_business_id("04")  # 04: subscription [unverified sub-type list]
        obj: dict[str, Any] = {
            "SubscribeID": sid,
            "Title": title,
            "SubscribeDetail": detail,
            "ResourceClass": resource_class,
            "ResourceURI": resource_uri or self.config.lower_id,
            "ApplicantName": "值班员",
            "ApplicantOrg": "普陀公安分局",
            "BeginTime": begin.astimezone(LOCAL).strftime("%Y%m%d%H%M%S"),
            "EndTime": end.astimezone(LOCAL).strftime("%Y%m%d%H%M%S"),
            "ReceiveAddr": self.receive_addr,
            "ReportInterval": 1,
            "Reason": "治安防控",
            "OperateType": 0,
            "SubscribeStatus": 0,
            "ResultImageDeclare": "-1",
            "ResultFeatureDeclare": -1,
            **(extra or {}),
        }
        body = {"SubscribeListObject": {"SubscribeObject": [obj]}}
        reply = self._session.post(
            lower_url.rstrip("/") + "/VIID/Subscribes", json=body, headers=self._headers(), timeout=10
        )
        reply.raise_for_status()
        code = int(reply.json()["ResponseStatusListObject"]["ResponseStatusObject"][0]["StatusCode"])
        if code == OK:
            with self.lock:
                self.subscriptions[sid] = obj
        return sid, code

    def cancel(self, lower_url: str, subscribe_id: str, reason: str = "任务结束") -> int:
        """PUT the cancellation (OperateType 1); the StatusCode the lower answered."""
        with self.lock:
            obj = dict(self.subscriptions.get(subscribe_id) or {"SubscribeID": subscribe_id})
        obj |= {
            "OperateType": 1,
            "SubscribeStatus": 1,
            "SubscribeCancelOrg": "普陀公安分局",
            "SubscribeCancelPerson": "值班员",
            "CancelTime": local_now(),
            "CancelReason": reason,
        }
        url = f"{lower_url.rstrip('/')}/VIID/Subscribes/{subscribe_id}"
        reply = self._session.put(url, json={"SubscribeObject": obj}, headers=self._headers(), timeout=10)
        reply.raise_for_status()
        code = int(reply.json()["ResponseStatusObject"]["StatusCode"])
        if code == OK:
            with self.lock:
                if subscribe_id in self.subscriptions:
                    self.subscriptions[subscribe_id]["SubscribeStatus"] = 1
        return code

    def list_subscriptions(self, lower_url: str) -> list[dict[str, Any]]:
        reply = self._session.get(lower_url.rstrip("/") + "/VIID/Subscribes", headers=self._headers(), timeout=10)
        reply.raise_for_status()
        return list(reply.json()["SubscribeListObject"].get("SubscribeObject", []))

    def directory(self, lower_url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The lower's devices (APEs) and tollgates, so records' DeviceID/TollgateID resolve."""
        base = lower_url.rstrip("/")
        apes = self._session.get(base + "/VIID/APEs", headers=self._headers(), timeout=10)
        gates = self._session.get(base + "/VIID/Tollgates", headers=self._headers(), timeout=10)
        apes.raise_for_status()
        gates.raise_for_status()
        return apes.json()["APEListObject"]["APEObject"], gates.json()["TollgateListObject"]["TollgateObject"]

    def summary(self) -> str:
        rec = self.received
        return f"viid peer: {len(rec.vehicles)} objects, {rec.duplicates} duplicates, {rec.malformed} malformed"


def main() -> None:
    parser = argparse.ArgumentParser(description="A simulated upper VIID platform (GA/T 1400) on loopback.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--password", default="viid-secret")
    parser.add_argument("--lower-id", default=UpperConfig.lower_id)
    parser.add_argument("--subscribe-to", help="the lower platform's base URL: POST a vehicle subscription")
    parser.add_argument("--fail-every", type=int, default=0)
    parser.add_argument("--drop-every", type=int, default=0)
    parser.add_argument("--restart-every", type=float, default=0.0, help="seconds between restarts")
    args = parser.parse_args()
    config = UpperConfig(
        lower_id=args.lower_id, password=args.password, fail_every=args.fail_every, drop_every=args.drop_every
    )
    with UpperPlatform(config, port=args.port) as upper:
        print(f"upper VIID platform on {upper.url}", flush=True)
        if args.subscribe_to:
            time.sleep(2)
            sid, code = upper.subscribe(args.subscribe_to)
            print(f"subscription {sid}: StatusCode {code}", flush=True)
        try:
            while True:
                time.sleep(args.restart_every or 3600)
                if args.restart_every:
                    upper.restart()
                print(upper.summary(), flush=True)
        except KeyboardInterrupt:
            print(upper.summary(), flush=True)


if __name__ == "__main__":
    main()
