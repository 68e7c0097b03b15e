"""The carrier inbox on real loopback HTTP, pushed to by the simulated CTWing/OneNET platforms:
both formats land as contract rows, OneNET's verification, signatures and secure mode, duplicates
and retries → 0 doubled rows, gaps and silent devices are events, alarms fit the relay."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb

import pipeline
from connectors.carrier.processor import Processor
from connectors.collector_progress import write_watermark
from connectors.mqtt import landing_root
from relay.alarms import parse_alarm
from simulator.carrier_push import CarrierPusher, PushConfig, Report, onenet_body, onenet_messages, reports
from tests.connectors.carrier_helpers import AES_KEY, TOKEN, inbox_hub, landed, running_inbox, small_fleet
from warehouse.migrations import migrate


def pusher(url: str, **overrides: Any) -> CarrierPusher:
    cfg = PushConfig(
        ctwing_url=url + "/carrier/ctwing", onenet_url=url + "/carrier/onenet", onenet_token=TOKEN, rate=400,
        retry_spacing_s=0.05, **overrides,
    )  # fmt: skip
    return CarrierPusher(cfg)


def outbox(processor: Processor) -> list[tuple[str, dict[str, object]]]:
    rows = processor.conn.execute("SELECT sealed FROM outbox ORDER BY id").fetchall()
    found = [json.loads(processor.sealer.open("outbox", r[0])) for r in rows]
    return [(topic, json.loads(body)) for topic, body in found]


def key_of(row: dict[str, object]) -> tuple[object, object]:
    return row["device_id"], row["event_time"]


def expected_keys(items: list[Report]) -> set[tuple[str, str]]:
    return {
        (r.device.hub_device_id, datetime.fromtimestamp(r.event_ms / 1000, UTC).isoformat())
        for r in items
        if r.online is None
    }


def test_ctwing_and_onenet_pushes_become_contract_rows_exactly_once(tmp_path: Path) -> None:
    devices = small_fleet()
    hub = inbox_hub(tmp_path / "hub", devices)
    migrate(hub.control_url)
    start = datetime.now(UTC) - timedelta(seconds=1)
    items = list(reports(devices, int(time.time() * 1000), 180, seed=3, alarm_rate=0.2, offline_rate=0.05))
    with running_inbox(hub) as inbox:
        peer = pusher(inbox.url, dup_rate=0.3, reorder_rate=0.3)
        assert peer.verify_onenet()
        stats = peer.push(peer.deliveries(items))
        assert stats.failed == 0 and stats.lost_cooldown == 0
        end = datetime.now(UTC)
        inbox.processor.step(force_land=True)  # its watermark: everything received before now is landed
        assert inbox.processor.stats.duplicates > 0  # the peer did re-send
    rows = landed(hub, "home_safety") + landed(hub, "manhole_covers")
    assert not landed(hub, "_rejects")
    assert Counter(map(key_of, rows)).most_common(1)[0][1] == 1  # nothing landed twice
    assert set(map(key_of, rows)) == expected_keys(items)  # and every report landed
    gas = {(r.device.hub_device_id, r.values["gas_lel_pct"]) for r in items if r.device.kind == "gas" and r.values}
    assert {(r["device_id"], r["gas_lel_pct"]) for r in rows if r.get("detector") == "gas"} == gas  # APPdata decoded

    # The existing ingest reads them: contract-valid, staged once each.
    write_watermark(landing_root(hub), int(end.timestamp() * 1_000_000) + 1, "test-collector")
    for stream in ("home_safety", "manhole_covers"):
        summary = pipeline.run_window(hub, stream, start, end)
        assert summary["rows_quarantined"] == 0, summary
        assert summary["duplicates_dropped"] == 0
    with duckdb.connect(str(hub.warehouse_file), read_only=True) as con:
        staged = con.execute("SELECT count(*), count(DISTINCT msg_id) FROM stg_home_safety").fetchone()
        covers = con.execute("SELECT count(*) FROM stg_manhole_covers").fetchone()
    assert staged is not None and covers is not None
    assert staged[0] == staged[1] == sum(1 for r in rows if "detector" in r)
    assert covers[0] == sum(1 for r in rows if "cover_type" in r)


def test_alarms_are_raised_and_cleared_in_the_relays_contract(tmp_path: Path) -> None:
    devices = small_fleet()
    hub = inbox_hub(tmp_path / "hub", devices)
    items = list(reports(devices, int(time.time() * 1000), 270, seed=5, alarm_rate=0.3))
    with running_inbox(hub) as inbox:
        peer = pusher(inbox.url, reorder_rate=0.2)
        assert peer.verify_onenet()
        peer.push(peer.deliveries(items))
        inbox.processor.step(force_land=True)
        alarms = outbox(inbox.processor)
    assert alarms
    raised = Counter((p["device_id"], p["alarm_id"]) for _, p in alarms if p["alarm_state"] == "raised")
    cleared = Counter((p["device_id"], p["alarm_id"]) for _, p in alarms if p["alarm_state"] == "cleared")
    assert max(raised.values()) == 1 and set(cleared) <= set(raised)
    categories: Counter[str] = Counter()
    for topic, payload in alarms:
        # The relay's own check.
        alarm = parse_alarm(topic, json.dumps(payload).encode(), hub.community_id, 4096, b"k" * 32)
        assert alarm is not None
        categories[alarm.category] += 1
    assert {"smoke", "gas"} <= set(categories) and {"manhole_open", "manhole_tilt"} & set(categories)


def test_onenet_url_verification_signature_refusal_and_plus_as_space(tmp_path: Path) -> None:
    hub = inbox_hub(tmp_path / "hub", small_fleet())
    with running_inbox(hub) as inbox:
        conn = http.client.HTTPConnection("127.0.0.1", inbox.port, timeout=5)

        def get(msg: str, nonce: str, signature: str) -> tuple[int, bytes]:
            conn.request("GET", f"/carrier/onenet?msg={quote(msg)}&nonce={nonce}&signature={signature}")
            resp = conn.getresponse()
            return resp.status, resp.read()

        # Find a challenge whose signature holds a '+', sent unencoded (so it arrives as a space).
        for i in range(200):
            msg, nonce = f"challenge{i}", "abcd1234"
            sig = base64.b64encode(hashlib.md5((TOKEN + nonce + msg).encode()).digest()).decode()
            if "+" in sig:
                break
        assert get(msg, nonce, quote(sig, safe="")) == (200, msg.encode())
        assert get(msg, nonce, sig.replace("/", "%2F").replace("=", "%3D")) == (200, msg.encode())  # '+' raw
        wrong = base64.b64encode(hashlib.md5(("other" + nonce + msg).encode()).digest()).decode()
        assert get(msg, nonce, quote(wrong, safe=""))[0] == 403

        report = next(reports([d for d in small_fleet() if d.kind == "manhole"], int(time.time() * 1000), 1))
        forged = onenet_body(onenet_messages(report), "not-the-token")
        conn.request("POST", "/carrier/onenet", body=forged, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (403, b"signature does not verify")
        assert inbox.store.appended == 0  # refused before anything is kept
        tampered = onenet_body(onenet_messages(report), TOKEN).replace(b'"value":0', b'"value":1', 1)
        conn.request("POST", "/carrier/onenet", body=tampered, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (403, b"signature does not verify")
        conn.request("POST", "/carrier/onenet", body=onenet_body(onenet_messages(report), TOKEN))
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"ok")
        assert inbox.app.stats.refused_signature == 3 and inbox.store.appended == 1


def test_onenet_secure_mode_is_decrypted(tmp_path: Path) -> None:
    covers = [d for d in small_fleet() if d.kind == "manhole"]
    hub = inbox_hub(tmp_path / "hub", covers, onenet_aes_key=AES_KEY)
    items = list(reports(covers, int(time.time() * 1000), 30, seed=9))
    with running_inbox(hub) as inbox:
        peer = pusher(inbox.url, onenet_aes_key=AES_KEY, onenet_batch=2)
        assert peer.verify_onenet()
        assert peer.push(peer.deliveries(items)).accepted == 60  # 4 datapoints a report, 2 a push
        inbox.processor.step(force_land=True)
    rows = landed(hub, "manhole_covers")
    # Two pushes per report: each push's datapoints make one row, both of the same report time.
    assert {key_of(r) for r in rows} == expected_keys(items) and len(rows) == 60
    tilts = {(r.device.hub_device_id, r.values["tilt_deg"]) for r in items}
    assert {(r["device_id"], r["tilt_deg"]) for r in rows if "tilt_deg" in r} == tilts


def test_undecodable_pushes_are_kept_answered_200_and_rejected_with_a_field_reason(tmp_path: Path) -> None:
    hub = inbox_hub(tmp_path / "hub", small_fleet())
    gas = next(d for d in small_fleet() if d.kind == "gas")
    bad_frame = {"messageType": "dataReport", "deviceId": gas.carrier_device_id, "productId": gas.product_id,
                 "timestamp": int(time.time() * 1000), "upPacketSN": 7,
                 "payload": {"APPdata": "qgEAAQAujmk="}}  # fmt: skip
    with running_inbox(hub) as inbox:
        conn = http.client.HTTPConnection("127.0.0.1", inbox.port, timeout=5)
        for body in (b"not json {", json.dumps(bad_frame).encode()):
            conn.request("POST", "/carrier/ctwing", body=body)
            resp = conn.getresponse()
            assert (resp.status, resp.read()) == (200, b"ok")  # never non-200 for what cannot be read yet
        inbox.processor.step(force_land=True)
    rejects = landed(hub, "_rejects")
    assert sorted(r["problem"] for r in rejects) == [
        "body is not a JSON object",
        "payload.APPdata frame checksum does not match",
    ]
    assert all(gas.imei not in str(r["problem"]) for r in rejects)


class LostAnswers:
    """A front that forwards each push to the inbox and then, for some, loses the inbox's answer
    (502 to the platform): the push is kept, the platform retries — the duplicates CTWing makes."""

    def __init__(self, target_port: int, every: int = 3) -> None:
        self.count = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # the http.server API's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                conn = http.client.HTTPConnection("127.0.0.1", target_port, timeout=5)
                conn.request("POST", self.path, body=body, headers={"Content-Type": "application/json"})
                status = conn.getresponse().status
                conn.close()
                with lock:
                    outer.count += 1
                    lose = outer.count % every == 0
                self.send_response(502 if lose else status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_carrier_retries_and_duplicates_give_zero_doubled_rows(tmp_path: Path) -> None:
    devices = small_fleet()
    hub = inbox_hub(tmp_path / "hub", devices)
    items = list(reports(devices, int(time.time() * 1000), 150, seed=11, alarm_rate=0.1))
    with running_inbox(hub) as inbox:
        front = LostAnswers(inbox.port)
        try:
            peer = pusher(front.url, dup_rate=0.5, reorder_rate=0.2, onenet_skip_verify=True, cooldown_min_sample=10**6)
            stats = peer.push(peer.deliveries(items))
        finally:
            front.close()
        assert stats.retried > 0  # (a push may even be given up on: the inbox kept it at every attempt)
        inbox.processor.step(force_land=True)
        raised = [p for _, p in outbox(inbox.processor) if p["alarm_state"] == "raised"]
    rows = landed(hub, "home_safety") + landed(hub, "manhole_covers")
    assert Counter(map(key_of, rows)).most_common(1)[0][1] == 1
    assert set(map(key_of, rows)) == expected_keys(items)
    assert len(raised) == len({p["alarm_id"] for p in raised})  # no alarm raised twice


def test_sequence_gaps_and_silent_devices_are_events(tmp_path: Path) -> None:
    devices = [d for d in small_fleet() if d.carrier == "ctwing"]
    hub = inbox_hub(tmp_path / "hub", devices, gap_grace_seconds=60)
    items = list(reports(devices, int(time.time() * 1000), 60, seed=13))
    lost = {r.key for r in items[10:40:3]}  # lost to a cool-down: never pushed
    with running_inbox(hub) as inbox:
        peer = pusher(inbox.url)
        peer.push([d for d in peer.deliveries(items) if d.key not in lost])
        proc = inbox.processor
        proc.step(force_land=True)
        proc.sweep()
        assert not [e for e in proc.events() if e[1] == "gap"]  # within the grace period: may still come
        now = time.time()
        proc.clock = lambda: now + 120
        proc.sweep()
        gaps = [e for e in proc.events() if e[1] == "gap"]
        assert sum(d["missing"] for _, _, d in gaps if d) == len(lost)
        assert {proc.device_of(t).device_id for t, _, _ in gaps if t} == {k.split(":")[0] for k in lost}  # type: ignore[union-attr]

        proc.clock = lambda: now + 4 * 3600  # three hourly reports missed
        proc.sweep()
        silent = [t for t, e, _ in proc.events() if e == "silent"]
        assert len(silent) == len(devices)
        faults = [p for _, p in outbox(proc) if p["alarm_type"] == "fault"]
        assert len(faults) == len(devices) and {p["alarm_state"] for p in faults} == {"raised"}
        proc.sweep()
        assert len([e for e in proc.events() if e[1] == "silent"]) == len(devices)  # once, not every sweep

        back = next(reports(devices[:1], int((now + 4 * 3600) * 1000), 1, seed=99))
        back.sn = 10_000  # a reset counter, after a battery change
        peer.push(peer.deliveries([back]))
        proc.step()
        assert [e for _, e, _ in proc.events()][-2:] == ["back", "sequence_reset"]
        cleared = [p for _, p in outbox(proc) if p["alarm_type"] == "fault" and p["alarm_state"] == "cleared"]
        assert [p["device_id"] for p in cleared] == [devices[0].hub_device_id]
        assert all(d.hub_device_id not in str(proc.events()) for d in devices)  # events hold pseudonyms


def test_ctwing_tenant_allow_list(tmp_path: Path) -> None:
    hub = inbox_hub(tmp_path / "hub", small_fleet(), ctwing_tenants=["2000031187"])
    with running_inbox(hub) as inbox:
        conn = http.client.HTTPConnection("127.0.0.1", inbox.port, timeout=5)
        conn.request("POST", "/carrier/ctwing", body=json.dumps({"tenantId": "999", "messageType": "dataReport"}))
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (403, b"tenant not accepted")
        assert inbox.store.appended == 0


def test_alarms_reach_the_community_broker_where_the_relay_listens(tmp_path: Path) -> None:
    import paho.mqtt.client as mqtt

    from connectors.carrier.alarms_out import AlarmPublisher
    from kernel.mqtt_settings import MqttSettings
    from simulator.devices_broker import Broker

    devices = small_fleet()
    hub = inbox_hub(tmp_path / "hub", devices)
    items = list(reports(devices, int(time.time() * 1000), 90, seed=5, alarm_rate=0.3))
    received: list[tuple[str, dict[str, Any]]] = []
    subscribed = threading.Event()
    with Broker(tmp_path / "broker") as broker, running_inbox(hub) as inbox:
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="relay-stand-in")
        sub.on_connect = lambda c, *_: c.subscribe(f"neuron/{hub.community_id}/+/+/alarm", qos=1)
        sub.on_subscribe = lambda *_: subscribed.set()
        sub.on_message = lambda _c, _u, m: received.append((m.topic, json.loads(m.payload)))
        sub.connect(broker.host, broker.port)
        sub.loop_start()
        assert subscribed.wait(10)
        peer = pusher(inbox.url)
        assert peer.verify_onenet()
        peer.push(peer.deliveries(items))
        inbox.processor.step(force_land=True)
        expected = outbox(inbox.processor)
        config = MqttSettings(port=broker.port, protocol=broker.protocol)  # type: ignore[arg-type]
        stop = threading.Event()
        ready = inbox.processor.outbox_ready
        publisher = AlarmPublisher(inbox.store.files, inbox.store.sealer, config, "neuron-inbox-test", ready)
        thread = threading.Thread(target=publisher.run, args=(stop,))
        thread.start()
        deadline = time.monotonic() + 20
        while len(received) < len(expected) and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        thread.join(10)
        sub.loop_stop()
        assert not outbox(inbox.processor)  # deleted only once the broker had them
    assert expected and sorted(received, key=str) == sorted(expected, key=str)


def test_a_push_that_breaks_processing_is_rejected_and_the_rest_go_on(tmp_path: Path, monkeypatch: Any) -> None:
    from connectors.carrier import processor as processor_module

    def broken(_message: dict[str, Any]) -> Any:
        raise KeyError("a decoder bug")

    monkeypatch.setitem(processor_module.CTWING_DECODERS, "ctwing-gas-frame", broken)
    devices = small_fleet()
    hub = inbox_hub(tmp_path / "hub", devices)
    items = list(reports(devices, int(time.time() * 1000), 18, seed=2))
    with running_inbox(hub) as inbox:
        peer = pusher(inbox.url)
        assert peer.verify_onenet()
        peer.push(peer.deliveries(items))
        inbox.processor.step(force_land=True)
    rejects = landed(hub, "_rejects")
    assert {r["problem"] for r in rejects} == {"the inbox could not process it (KeyError)"}
    assert len(rejects) == sum(1 for r in items if r.device.kind == "gas")
    rows = landed(hub, "home_safety") + landed(hub, "manhole_covers")
    assert {key_of(r) for r in rows} == expected_keys([r for r in items if r.device.kind != "gas"])
