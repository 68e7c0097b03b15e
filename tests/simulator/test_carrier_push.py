"""The simulated CTWing/OneNET platforms keep the carriers' rules against a plain loopback receiver:
200-only success, at most 3 retries, the cool-down that silently drops pushes, OneNET's signatures,
secure-mode layout and URL verification."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from simulator.carrier_push import (
    CarrierPusher,
    PushConfig,
    carrier_fleet,
    ctwing_message,
    gas_frame,
    luhn_digit,
    onenet_body,
    onenet_messages,
    reports,
)

TOKEN = "tok"
KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


@contextmanager
def receiver(status: int) -> Iterator[tuple[str, list[bytes]]]:
    """A bare receiver answering every POST with `status` and a GET verification with its msg."""
    got: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # the http.server API's name
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            msg, nonce, sig = query["msg"][0], query["nonce"][0], query["signature"][0]
            ok = base64.b64encode(hashlib.md5((TOKEN + nonce + msg).encode()).digest()).decode() == sig
            body = msg.encode() if ok else b""
            self.send_response(200 if ok else 403)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", got
    finally:
        server.shutdown()
        server.server_close()


def test_fleet_has_luhn_imeis_and_carrier_imsis() -> None:
    fleet = carrier_fleet(7)
    assert {d.kind for d in fleet} == {"smoke", "gas", "manhole"}
    assert all(luhn_digit(d.imei[:14]) == d.imei[14] for d in fleet)
    assert all(d.imsi.startswith("46011" if d.carrier == "ctwing" else "46004") for d in fleet)


def test_ctwing_retries_three_times_then_cools_down_and_drops() -> None:
    devices = [d for d in carrier_fleet(7) if d.carrier == "ctwing"][:5]
    with receiver(500) as (url, got):
        cfg = PushConfig(ctwing_url=url, rate=200, workers=2, retry_spacing_s=0.01, cooldown_min_sample=8,
                         cooldown_seconds=30)  # fmt: skip
        peer = CarrierPusher(cfg)
        stats = peer.push(peer.deliveries(reports(devices, 1_700_000_000_000, 20)))
    assert stats.cooldowns == 1 and stats.accepted == 0
    assert stats.lost_cooldown > 0  # pushed not at all during the cool-down
    assert len(got) <= 4 * (stats.sent - stats.lost_cooldown)  # 1 attempt + at most 3 retries each


def test_ctwing_shapes_and_gas_frame() -> None:
    smoke, gas = (next(d for d in carrier_fleet(7) if d.kind == k) for k in ("smoke", "gas"))
    r = next(reports([smoke], 1_700_000_000_000, 1))
    m = ctwing_message(r)
    assert m["messageType"] == "dataReport" and m["payload"]["serviceData"]["Alarm_Status"] in (0, 2)
    frame = gas_frame({"gas_lel_pct": 30.5, "alarm": True, "battery_pct": 80, "rsrp": -90})
    head, kind, lel10, level, battery, rsrp, check = struct.unpack(">BBHBBbB", frame)
    assert (head, kind, lel10, level, battery, rsrp) == (0xAA, 2, 305, 2, 80, -90)
    assert check == sum(frame[:-1]) % 256
    g = ctwing_message(next(reports([gas], 1_700_000_000_000, 1)))
    assert len(base64.b64decode(g["payload"]["APPdata"])) == 8


def test_onenet_plain_and_secure_bodies_follow_the_official_sample() -> None:
    cover = next(d for d in carrier_fleet(7) if d.kind == "manhole")
    msgs = onenet_messages(next(reports([cover], 1_700_000_000_000, 1)))
    plain = json.loads(onenet_body(msgs, TOKEN))
    text = json.dumps(plain["msg"], separators=(",", ":"))
    assert (
        plain["msg_signature"]
        == base64.b64encode(hashlib.md5((TOKEN + plain["nonce"] + text).encode()).digest()).decode()
    )
    sealed = json.loads(onenet_body(msgs, TOKEN, KEY))
    key = base64.b64decode(KEY + "=")
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    out = dec.update(base64.b64decode(sealed["enc_msg"])) + dec.finalize()
    (length,) = struct.unpack(">I", out[16:20])
    assert json.loads(out[20 : 20 + length]) == msgs
    assert (
        sealed["msg_signature"]
        == base64.b64encode(hashlib.md5((TOKEN + sealed["nonce"] + sealed["enc_msg"]).encode()).digest()).decode()
    )


def test_onenet_verification_must_pass_before_pushing() -> None:
    with receiver(200) as (url, _):
        assert CarrierPusher(PushConfig(onenet_url=url, onenet_token=TOKEN)).verify_onenet()
        assert not CarrierPusher(PushConfig(onenet_url=url, onenet_token="wrong")).verify_onenet()
