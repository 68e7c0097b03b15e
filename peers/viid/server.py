"""The lower platform's HTTP side: the upper creates, cancels and lists subscriptions on
/VIID/Subscribes, and reads our directory on /VIID/APEs and /VIID/Tollgates (GA/T 1400.4).

Only what the consumer's policy grants is accepted: SubscribeDetail 13 (motor vehicles), without
images or feature vectors (the hub has none). Each SubscribeObject gets its own status in the
order given. Replies never echo a body; no access log.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from kernel.viid_settings import ViidSettings
from peers.viid.directory import apes, tollgates
from peers.viid.protocol import (
    ACTIVE,
    BAD_CONTENT,
    BAD_JSON,
    CANCELLED,
    INVALID_OPERATION,
    MOTOR_VEHICLES,
    OK,
    VIID_JSON,
    parse_viid_time,
    status_object,
)
from peers.viid.store import ViidStore, cancelled_body
from warehouse.models.viid import ViidSubscription

log = logging.getLogger(__name__)
# ResourceClass (A.19): 0 tollgate, 1 device, 4 VIID platform, 5 administrative division. Cases (3)
# and collection content (2) have no meaning for a community's gates.
RESOURCE_CLASSES = {0, 1, 4, 5}
MAX_BODY = 1 << 20


def subscription_problem(obj: Any) -> str | None:
    """Why a SubscribeObject cannot be accepted (field names, never values); None if it can."""
    if not isinstance(obj, dict):
        return "SubscribeObject: not an object"
    sid = obj.get("SubscribeID")
    if not isinstance(sid, str) or not 0 < len(sid) <= 33:
        return "SubscribeID"
    details = {d.strip() for d in str(obj.get("SubscribeDetail") or "").split(",") if d.strip()}
    if details != {MOTOR_VEHICLES}:
        return "SubscribeDetail: only 13 (motor vehicles) is granted"
    # "-1" declares no image; an upper asking for images (or feature vectors) asks for what the policy does not grant.
    if str(obj.get("ResultImageDeclare", "-1")).strip() not in ("-1", ""):
        return "ResultImageDeclare: images are not granted"
    if str(obj.get("ResultFeatureDeclare", "-1")).strip() not in ("-1", ""):
        return "ResultFeatureDeclare: feature vectors are not granted"
    raw_class = obj.get("ResourceClass")
    if isinstance(raw_class, bool) or not isinstance(raw_class, int | str) or not str(raw_class).isdigit():
        return "ResourceClass"
    if int(raw_class) not in RESOURCE_CLASSES:
        return "ResourceClass: not supported by this platform"
    if not str(obj.get("ResourceURI") or "").strip() or len(str(obj.get("ResourceURI"))) > 256:
        return "ResourceURI"
    addr = urlsplit(str(obj.get("ReceiveAddr") or ""))
    if addr.scheme not in ("http", "https") or not addr.netloc or len(str(obj.get("ReceiveAddr"))) > 256:
        return "ReceiveAddr"
    begin, end = parse_viid_time(obj.get("BeginTime")), parse_viid_time(obj.get("EndTime"))
    if begin is None:
        return "BeginTime"
    if end is None or end <= begin:
        return "EndTime"
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    lower: ViidServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.warning("viid: a request to the lower platform failed while being handled")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "NeuronHub-VIID"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """No access log: request lines are not needed and bodies are never logged."""

    def send_json(self, code: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(code)
        self.send_header("Content-Type", VIID_JSON + ";charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self, method: str) -> None:
        lower: ViidServer = self.server.lower  # type: ignore[attr-defined]
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            self.send_json(413, {"ResponseStatusObject": status_object(path, BAD_CONTENT, "body too large")})
            return
        body = self.rfile.read(length) if length else b""
        code, payload = lower.handle(method, path, self.headers.get("User-Identify"), body)
        self.send_json(code, payload)

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")


class ViidServer:
    """/VIID/Subscribes, /VIID/APEs and /VIID/Tollgates on `listen_host:listen_port` (0: a free port)."""

    def __init__(
        self, config: ViidSettings, store: ViidStore, community_id: str, on_change: Callable[[], None] = lambda: None
    ) -> None:
        self.config = config
        self.store = store
        self.community_id = community_id
        self.on_change = on_change
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self.config.listen_port

    @property
    def url(self) -> str:
        return f"http://{self.config.listen_host}:{self.port}"

    def start(self) -> None:
        server = _Server((self.config.listen_host, self.config.listen_port), _Handler)
        server.lower = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.2,), name="viid-lower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    # --- requests ----------------------------------------------------------------------------

    def handle(self, method: str, path: str, ident: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
        """(HTTP status, reply) for one request."""
        # The standard does not say how a lower authenticates the upper's requests; the upper
        # names itself with User-Identify, and a configured `upper_id` must match it.
        if not ident or (self.config.upper_id and ident != self.config.upper_id):
            return 401, {"ResponseStatusObject": status_object(path, INVALID_OPERATION, "User-Identify")}
        if method == "GET" and path == "/VIID/APEs":
            return 200, {"APEListObject": {"APEObject": apes(self.config, self.community_id)}}
        if method == "GET" and path == "/VIID/Tollgates":
            return 200, {"TollgateListObject": {"TollgateObject": tollgates(self.config, self.community_id)}}
        if path == "/VIID/Subscribes" and method == "GET":
            listed = [s.body | {"SubscribeStatus": s.status} for s in self.store.subscriptions()]
            return 200, {"SubscribeListObject": {"SubscribeObject": listed}}
        match = re.fullmatch(r"/VIID/Subscribes(?:/([^/]{1,33}))?", path)
        if match is None or method not in ("POST", "PUT"):
            return 404, {"ResponseStatusObject": status_object(path, INVALID_OPERATION, "no such resource")}
        try:
            data = json.loads(body)
        except ValueError:
            return 200, {"ResponseStatusObject": status_object(path, BAD_JSON, "invalid JSON")}
        if match.group(1):  # PUT /VIID/Subscribes/<ID>: one subscription (cancel)
            obj = data.get("SubscribeObject") if isinstance(data, dict) else None
            code, text = self._put(match.group(1), obj)
            return 200, {"ResponseStatusObject": status_object(path, code, text, match.group(1))}
        wrapper = data.get("SubscribeListObject") if isinstance(data, dict) else None
        objects = wrapper.get("SubscribeObject") if isinstance(wrapper, dict) else None
        if not isinstance(objects, list):
            return 200, {"ResponseStatusObject": status_object(path, BAD_CONTENT, "SubscribeListObject")}
        replies = []
        for obj in objects:
            sid = str(obj.get("SubscribeID", "")) if isinstance(obj, dict) else ""
            if method == "PUT" or (isinstance(obj, dict) and str(obj.get("OperateType", 0)) == "1"):
                # Batch PUT, or a POST carrying OperateType 1: a cancellation (some uppers cancel so).
                code, text = self._put(sid, obj)
            else:
                code, text = self._create(ident, obj)
            replies.append(status_object(path, code, text, sid))
        self.on_change()
        return 200, {"ResponseStatusListObject": {"ResponseStatusObject": replies}}

    def _create(self, ident: str, obj: Any) -> tuple[int, str]:
        problem = subscription_problem(obj) or self._receive_host_problem(obj)
        active = [
            s for s in self.store.subscriptions() if s.status == ACTIVE and s.subscribe_id != obj.get("SubscribeID")
        ]
        if problem is None and len(active) >= self.config.max_subscriptions:
            problem = "too many active subscriptions (not granted)"
        if problem is not None:
            log.info("viid: subscription refused (%s)", problem)
            return INVALID_OPERATION if "granted" in problem or "supported" in problem else BAD_CONTENT, problem
        begin, end = parse_viid_time(obj["BeginTime"]), parse_viid_time(obj["EndTime"])
        assert begin is not None and end is not None
        now = datetime.now(UTC)
        stored = obj | {"OperateType": 0, "SubscribeStatus": ACTIVE}
        self.store.save_subscription(
            ViidSubscription(
                subscribe_id=obj["SubscribeID"],
                upper_id=ident,
                detail=MOTOR_VEHICLES,
                resource_class=int(obj["ResourceClass"]),
                resource_uri=str(obj["ResourceURI"]),
                receive_addr=str(obj["ReceiveAddr"]),
                begin_time=begin.astimezone(UTC),
                end_time=end.astimezone(UTC),
                status=ACTIVE,
                body=json.dumps(stored, ensure_ascii=False),
                created_at=now,
                updated_at=now,
            )
        )
        log.info("viid: subscription accepted (motor vehicles)")
        return OK, "OK"

    def _receive_host_problem(self, obj: dict[str, Any]) -> str | None:
        host = urlsplit(str(obj["ReceiveAddr"])).hostname
        allowed = {urlsplit(self.config.upper_url).hostname, *self.config.receive_hosts}
        return None if host in allowed else "ReceiveAddr: not a host of the upper platform (not granted)"

    def _put(self, subscribe_id: str, obj: Any) -> tuple[int, str]:
        if not isinstance(obj, dict) or str(obj.get("OperateType", "")) != "1":
            # Updating a subscription in place is not supported: cancel it and subscribe again.
            return INVALID_OPERATION, "OperateType: only 1 (cancel) is supported"
        if obj.get("SubscribeID", subscribe_id) != subscribe_id:
            return BAD_CONTENT, "SubscribeID"
        current = {s.subscribe_id: s for s in self.store.subscriptions()}.get(subscribe_id)
        if current is None:
            return INVALID_OPERATION, "no such subscription"
        self.store.set_status(subscribe_id, CANCELLED, cancelled_body(current.body, obj))
        log.info("viid: subscription cancelled by the upper platform")
        self.on_change()
        return OK, "OK"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
