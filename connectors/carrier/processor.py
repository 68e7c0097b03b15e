"""The inbox's processor: from durable pushes to landed readings, published alarms and device events.

It works through the inbox's writer files in receive order (`progress.processed[.N]` per file), one
transaction per step, so a killed inbox resumes where it stopped and repeats nothing it committed:

- decode per product (`decoders`), find the hub device (`devices`); what cannot be read is landed
  under `_rejects` with a reason naming a field, never dropped;
- de-duplicate by a keyed hash of (device, sequence number) or (device, type, time, content), as the
  standard says: CTWing's ≤3 retries and OneNET's re-sends deliver identical messages;
- track each device's uplink sequence numbers (CTWing `upPacketSN`): numbers skipped and still
  missing after `gap_grace_seconds` are a `gap` event (lost to a cool-down or an outage); a device
  silent for its product's `silent_after_seconds` is a `silent` event (and, for an in-home
  detector, a `fault` alarm raised, cleared when it reports again);
- readings wait in `pending_rows` and are landed every `land_interval_ms` as one file per stream
  and window, named by the rows' ids, so landing again after a crash rewrites the same file;
- alarms (smoke, gas, an open or tilted cover) go to the `outbox`, which `alarms_out` publishes on
  the community broker as the device would have: the collector lands them and the relay relays them;
- what CTWing did not push (its 1-minute cool-down after a failing receiver, or the inbox's own
  outage) is re-fetched through its history API (`ctwing_api`) and processed like a push: for a
  device whose sequence numbers skip (a gap), and for every CTWing device when the processor
  starts and again `refetch_again_after_seconds` later (a cool-down outlives the outage that
  tripped it). Re-fetched uplinks carry no sequence number, so CTWing data reports are
  de-duplicated by (device, platform timestamp) as well: a re-fetched uplink that was also
  pushed, or pushed later by a retry, is a duplicate.

Device state and events are keyed by a pseudonym of the device (HMAC under a key derived from the
master secret): the inbox file holds no raw identifier outside its encrypted columns.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from connectors import collector_landing as landing
from connectors.carrier import onenet
from connectors.carrier.ctwing_api import CtwingHistory
from connectors.carrier.decoders import CTWING_DECODERS, ONENET_DECODERS, DecodeError, Reading
from connectors.carrier.devices import DeviceRegister, HubDevice
from connectors.carrier.store import InboxFiles, KeySource, Sealer, connect, transaction
from connectors.collector_progress import write_writer_watermark
from connectors.mqtt import REJECTS
from kernel.errors import ConfigError, RetriableError
from kernel.inbox_settings import InboxSettings

log = logging.getLogger(__name__)

STREAMS = ("home_safety", "manhole_covers")
TELEMETRY_KIND = {"home_safety": "telemetry", "manhole_covers": "status"}
SEVERITY = {"smoke": "critical", "gas": "critical", "open": "major", "tilt": "major", "fault": "major"}
READINGS = ("gas_lel_pct", "smoke_obscuration_pct", "tilt_deg", "water_level_cm")
# A jump of the sequence number larger than this is a reset (a rebooted device, a wrapped counter),
# not a gap. The counter's range is not documented [unverified]; we chose a bound no hourly reporter
# crosses in the dedupe horizon.
MAX_GAP = 1000


@dataclass
class ProcessorStats:
    """Counts of one run (no identifiers)."""

    pushes: int = 0
    messages: int = 0
    duplicates: int = 0
    readings: int = 0
    rejects: int = 0
    alarms: int = 0
    landed_rows: int = 0
    landed_files: int = 0
    refetched: int = 0  # uplinks fetched again through CTWing's history API (duplicates included)
    events: dict[str, int] = field(default_factory=dict)


@dataclass
class _Step:
    """What one processing step will commit together."""

    seen: dict[bytes, int] = field(default_factory=dict)
    rows: list[tuple[str, int, bytes]] = field(default_factory=list)  # stream, received µs, sealed row
    outbox: list[bytes] = field(default_factory=list)
    events: list[tuple[int, str | None, str, str | None]] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


class Processor:
    """Processes the inbox; `step()` once, or `run(stop)` until stopped."""

    def __init__(
        self,
        config: InboxSettings,
        files: InboxFiles,
        register: DeviceRegister,
        keys: KeySource,
        landing_root: Path,
        community_id: str,
        topic_prefix: str = "neuron",
        clock: Any = time.time,
        safe_through: Callable[[], int] | None = None,
        history: CtwingHistory | None = None,
    ) -> None:
        """`safe_through`: the store's `safe_through_us` when the store is in this process (the
        processor then writes the landing watermark); None in a process of its own, where the
        receiver's process writes it (`write_watermark`)."""
        self.config, self.files, self.register, self.keys = config, files, register, keys
        self.root, self.community_id, self.prefix, self.clock = landing_root, community_id, topic_prefix, clock
        self.safe_through = safe_through
        self._lock = _exclusive(files.state_path)
        self.sealer = Sealer(keys)
        store = files
        self.conn = connect(store.state_path, store.synchronous)  # the processor's state: written here only
        # Read here; written by the store's writer threads, one file each.
        self.shards = [connect(path, store.synchronous) for path in store.paths]
        self.stats = ProcessorStats()
        self._key_mac = keys.derive("carrier-inbox-keys")
        self._device_mac = keys.derive("carrier-inbox-devices")
        self._tokens = {d.device_id: self._token(d.device_id) for d in register.devices}
        self._by_token = {t: d for d, t in ((d, self._tokens[d.device_id]) for d in register.devices)}
        self._states: dict[str, dict[str, Any]] = {
            token: json.loads(state) for token, state in self.conn.execute("SELECT token, state FROM device_state")
        }
        self._last_land = self._last_sweep = float("-inf")
        self._last_prune = float("-inf")
        self._started_us = int(self.clock() * 1_000_000)
        self.outbox_ready = threading.Event()
        # Re-fetch through CTWing's history API: devices due (hub device id → from ms) and when every
        # CTWing device is due (at start, after the inbox's own outage, and once more after a cool-down).
        self.history = history
        self._refetch: dict[str, int | None] = {}
        started = self.clock()
        self._refetch_all_at = [started, started + config.refetch_again_after_seconds] if history else []
        self._refetch_not_before = float("-inf")

    # --- identities -------------------------------------------------------------------------

    def _token(self, device_id: str) -> str:
        return hmac.new(self._device_mac, device_id.encode(), hashlib.sha256).hexdigest()[:24]

    def _key(self, text: str) -> bytes:
        return hmac.new(self._key_mac, text.encode(), hashlib.sha256).digest()[:16]

    def _progress(self, name: str) -> int:
        row = self.conn.execute("SELECT value FROM progress WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _processed(shard: int) -> str:
        return "processed" if shard == 0 else f"processed.{shard}"

    # --- the loop ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        interval = self.config.process_interval_ms / 1000
        while not stop.is_set():
            try:
                self.step()
            except (sqlite3.Error, OSError) as exc:
                log.error("carrier inbox: processing failed (%s); retrying", exc)
                stop.wait(1.0)
            # A fixed pace rather than a wake-up per commit: under load, fewer and larger steps take
            # less of the CPU (and the GIL) the carriers' answers need; an alarm waits ≤ one interval.
            stop.wait(interval)
        self.step(force_land=True)

    def step(self, force_land: bool = False) -> int:
        """Process what is new, land what is due, sweep for silence and gaps; returns pushes processed."""
        # Before reading: anything pushed later is stamped after it.
        through_us = self.safe_through() if self.safe_through is not None else None
        done = self._process_new()
        if self.history is not None:
            self._refetch_due()
        now = time.monotonic()
        if force_land or now - self._last_land >= self.config.land_interval_ms / 1000:
            self._land_pending()
            self._last_land = now
            for conn in self.shards:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")  # never waits for, nor blocks, the writers
            if through_us is not None:
                write_watermark(self.files, self.root, through_us)
            self.on_landed()
        if now - self._last_sweep >= self.config.sweep_seconds:
            self.sweep()
            self._last_sweep = now
        if now - self._last_prune >= 3600:
            self._prune()
            self._last_prune = now
        return done

    def _process_new(self, limit: int = 2000) -> int:
        query = "SELECT seq, received_us, carrier, body FROM pushes WHERE seq > ? ORDER BY seq LIMIT ?"
        found, last = [], {}
        for shard, conn in enumerate(self.shards):
            rows = conn.execute(query, (self._progress(self._processed(shard)), limit)).fetchall()
            if rows:
                found += [(received_us, shard, seq, carrier, body) for seq, received_us, carrier, body in rows]
                last[shard] = rows[-1][0]
        if not found:
            return 0
        step = _Step()
        for received_us, _shard, _seq, carrier, sealed in sorted(found):  # by receive time across the writers
            self.stats.pushes += 1
            body = self.sealer.open("pushes", sealed)
            try:
                self._push(step, received_us, carrier, body)
            except Exception as exc:  # a push nothing foresaw must not stop the ones behind it
                log.error("carrier inbox: a push could not be processed (%s); landed as a reject", type(exc).__name__)
                self._reject(step, carrier, body, received_us, f"the inbox could not process it ({type(exc).__name__})")
        self._commit(step, {self._processed(shard): seq for shard, seq in last.items()})
        return len(found)

    def _commit(self, step: _Step, processed: dict[str, int] | None) -> None:
        with transaction(self.conn) as c:
            c.executemany("INSERT OR IGNORE INTO seen (key, at_us) VALUES (?, ?)", step.seen.items())
            c.executemany("INSERT INTO pending_rows (stream, received_us, sealed) VALUES (?, ?, ?)", step.rows)
            c.executemany("INSERT INTO outbox (sealed) VALUES (?)", [(o,) for o in step.outbox])
            c.executemany("INSERT INTO events (at_us, device, event, detail) VALUES (?, ?, ?, ?)", step.events)
            c.executemany(
                "INSERT OR REPLACE INTO device_state (token, state) VALUES (?, ?)",
                [(t, json.dumps(self._states[t])) for t in step.touched],
            )
            if processed:
                c.executemany("INSERT OR REPLACE INTO progress (name, value) VALUES (?, ?)", processed.items())
        if step.outbox:
            self.outbox_ready.set()

    # --- one push ---------------------------------------------------------------------------

    def _push(self, step: _Step, received_us: int, carrier: str, body: bytes) -> None:
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            parsed = None
        if not isinstance(parsed, dict):
            self._reject(step, carrier, body, received_us, "body is not a JSON object")
            return
        if carrier == "ctwing":
            self._ctwing(step, parsed, body, received_us)
        else:
            self._onenet(step, parsed, body, received_us)

    def _seen(self, step: _Step, key: bytes, received_us: int) -> bool:
        """Whether a message key was processed before (then it is counted as a duplicate)."""
        if key in step.seen or self.conn.execute("SELECT 1 FROM seen WHERE key = ?", (key,)).fetchone():
            self.stats.duplicates += 1
            return True
        step.seen[key] = received_us
        return False

    def _seen_any(self, step: _Step, keys: list[bytes], received_us: int) -> bool:
        """Whether any of a message's keys was processed before; if not, all of them are recorded."""
        if any(k in step.seen or self.conn.execute("SELECT 1 FROM seen WHERE key = ?", (k,)).fetchone() for k in keys):
            self.stats.duplicates += 1
            return True
        for k in keys:
            step.seen[k] = received_us
        return False

    def _ctwing(self, step: _Step, m: dict[str, Any], body: bytes, received_us: int) -> None:
        self.stats.messages += 1
        kind, device_key = m.get("messageType"), str(m.get("deviceId"))
        device = self.register.find("ctwing", m.get("deviceId"), m.get("IMEI") or m.get("imei"))
        if kind == "deviceOnlineOfflineReport":
            key = self._key(f"ct|{device_key}|oo|{m.get('timestamp')}|{m.get('eventType')}")
            if self._seen(step, key, received_us):
                return
            if device is None:
                self._reject(step, "ctwing", body, received_us, "deviceId is not in the device register")
                return
            # An event only: an NB-IoT device in power saving goes "offline" routinely, and being online
            # is not reporting — silence is measured on data reports alone (our choice; undocumented).
            event = "online" if m.get("eventType") == 1 else "offline"
            self._event(step, received_us, self._tokens[device.device_id], event, None)
            return
        if kind != "dataReport":
            # eventReport, commandResponse, dataReportTupUnion (structure unverified): kept, not decoded.
            self._reject(step, "ctwing", body, received_us, "messageType is not one the inbox decodes")
            return
        sn = m.get("upPacketSN")
        usable = isinstance(sn, int) and not isinstance(sn, bool) and sn > 0
        if usable:
            key_text = f"ct|{device_key}|sn|{sn}"
        else:  # -1 or "": the standard's fallback key (type, time, content)
            content = hashlib.sha256(json.dumps(m.get("payload"), sort_keys=True).encode()).hexdigest()
            key_text = f"ct|{device_key}|{kind}|{m.get('timestamp')}|{content}"
        ts = m.get("timestamp")
        # Also by (device, platform time): a re-fetched uplink has no sequence number (ctwing_api).
        keys = [self._key(key_text)] + ([self._key(f"ct|{device_key}|ts|{ts}")] if isinstance(ts, int) else [])
        if self._seen_any(step, keys, received_us):
            return
        if device is None:
            self._reject(step, "ctwing", body, received_us, "deviceId and IMEI are not in the device register")
            return
        product = self.config.product("ctwing", str(m.get("productId")))
        decoder = CTWING_DECODERS.get(product.decoder) if product else None
        if decoder is None:
            self._reject(step, "ctwing", body, received_us, "productId has no decoder in [inbox].products")
            return
        try:
            reading = decoder(m)
        except DecodeError as exc:
            self._reject(step, "ctwing", body, received_us, str(exc))
            return
        self._reading(step, device, reading, received_us, key_text, sn if usable else None)
        if isinstance(ts, int):
            st = self._states[self._tokens[device.device_id]]
            st["ts"] = max(st.get("ts") or 0, ts)

    def _onenet(self, step: _Step, parsed: dict[str, Any], body: bytes, received_us: int) -> None:
        msg: Any = parsed.get("msg")
        if "enc_msg" in parsed:
            aes = self.config.onenet_aes_key
            try:
                if aes is None or not aes.get_secret_value():
                    raise onenet.OneNetError("enc_msg received but no [inbox].onenet_aes_key is set")
                msg = json.loads(onenet.decrypt(aes.get_secret_value(), str(parsed["enc_msg"])))
            except (onenet.OneNetError, ValueError) as exc:
                reason = str(exc) if isinstance(exc, onenet.OneNetError) else "enc_msg does not decrypt to JSON"
                self._reject(step, "onenet", body, received_us, reason)
                return
        items = msg if isinstance(msg, list) else [msg]
        groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
        for item in items:
            self.stats.messages += 1
            if not isinstance(item, dict):
                self._reject(step, "onenet", body, received_us, "msg is not an object")
                continue
            dev, at, kind = str(item.get("dev_id")), item.get("at"), item.get("type")
            if kind == 1:
                groups[(dev, at if isinstance(at, int) else -1)].append(item)
            elif kind == 2:
                device = self.register.find("onenet", dev, item.get("imei"))
                if self._seen(step, self._key(f"on|{dev}|2|{at}|{item.get('status')}"), received_us):
                    continue
                if device is None:
                    self._reject(step, "onenet", body, received_us, "dev_id is not in the device register")
                else:  # an event only, as for CTWing (above)
                    event = "online" if item.get("status") == 1 else "offline"
                    self._event(step, received_us, self._tokens[device.device_id], event, None)
            else:  # type 7 (cached-command results) and anything else: kept, not decoded
                self._reject(step, "onenet", body, received_us, "msg.type is not one the inbox decodes")
        for (dev, at), points in groups.items():
            keys = [self._key(f"on|{dev}|1|{p.get('ds_id')}|{at}") for p in points]
            fresh = [p for p, k in zip(points, keys, strict=True) if not self._seen(step, k, received_us)]
            if not fresh:
                continue
            device = self.register.find("onenet", dev, fresh[0].get("imei"))
            if device is None:
                self._reject(step, "onenet", body, received_us, "dev_id is not in the device register")
                continue
            product = self.config.product("onenet", device.product_id)
            decoder = ONENET_DECODERS.get(product.decoder) if product else None
            if decoder is None:
                self._reject(step, "onenet", body, received_us, "the device's product has no decoder")
                continue
            try:
                reading = decoder(fresh)
            except DecodeError as exc:
                self._reject(step, "onenet", body, received_us, str(exc))
                continue
            # A report's datapoints may come in several pushes (OneNET batches as it likes): each push's
            # fresh datapoints become one row, so the key names them.
            streams = ",".join(sorted(str(p.get("ds_id")) for p in fresh))
            self._reading(step, device, reading, received_us, f"on|{dev}|{at}|{streams}", None)

    # --- a decoded report -------------------------------------------------------------------

    def _state(self, step: _Step, token: str) -> dict[str, Any]:
        state = self._states.get(token)
        if state is None:
            state = self._states[token] = {"sn": None, "missing": {}, "last_ms": 0, "seen_us": self._started_us,
                                           "alarm": None, "silent": False, "fault": None}  # fmt: skip
        step.touched.add(token)
        return state

    def _reading(self, step: _Step, device: HubDevice, r: Reading, received_us: int, key: str, sn: int | None) -> None:
        self.stats.readings += 1
        token = self._tokens[device.device_id]
        st = self._state(step, token)
        st["seen_us"] = max(st["seen_us"], received_us)
        if st["silent"]:
            st["silent"] = False
            self._event(step, received_us, token, "back", None)
            if st["fault"]:
                self._alarm(step, device, st["fault"], "fault", "cleared", r.event_ms, {}, key)
                st["fault"] = None
        if sn is not None:
            self._track(step, st, token, sn, received_us)
        msg_id = self._key(key).hex()
        payload = {"msg_id": msg_id, "device_id": device.device_id, "event_time": iso(r.event_ms),
                   **device.fixed, **r.values}  # fmt: skip
        self._row(step, device, TELEMETRY_KIND[device.stream], msg_id, payload, received_us)
        self._transitions(step, device, st, r, key)
        st["last_ms"] = max(st["last_ms"], r.event_ms)

    def _transitions(self, step: _Step, device: HubDevice, st: dict[str, Any], r: Reading, key: str) -> None:
        """Raise or clear the device's alarm. Reports are ordered by their time, not by arrival: a late
        report (older than the newest seen) changes nothing current, except that a late report of an
        alarm that a newer normal report already followed is an alarm that happened: it is raised at
        its time and cleared at the newer report's (we chose this over dropping a smoke alarm
        delivered out of order)."""
        current = st["alarm"]
        readings = {k: v for k, v in r.values.items() if k in READINGS and v is not None}
        if r.event_ms < st["last_ms"]:
            if r.alarm and current is None:
                alarm_id = self._alarm_id(device, r)
                self._alarm(step, device, alarm_id, r.alarm, "raised", r.event_ms, readings, key)
                self._alarm(step, device, alarm_id, r.alarm, "cleared", st["last_ms"], {}, key)
            return
        if current is not None and current["type"] != r.alarm:
            self._alarm(step, device, current["id"], current["type"], "cleared", r.event_ms, readings, key)
            st["alarm"] = None
        if r.alarm and st["alarm"] is None:
            alarm_id = self._alarm_id(device, r)
            self._alarm(step, device, alarm_id, r.alarm, "raised", r.event_ms, readings, key)
            st["alarm"] = {"id": alarm_id, "type": r.alarm}

    def _alarm_id(self, device: HubDevice, r: Reading) -> str:
        return "A" + self._key(f"alarm|{device.device_id}|{r.event_ms}|{r.alarm}").hex()[:15].upper()

    def _track(self, step: _Step, st: dict[str, Any], token: str, sn: int, received_us: int) -> None:
        high, missing = st["sn"], st["missing"]
        if high is None or abs(sn - high) > MAX_GAP:
            if high is not None:
                self._event(step, received_us, token, "sequence_reset", None)
            st["sn"], st["missing"] = sn, {}
        elif sn > high:
            for k in range(high + 1, sn):
                missing[str(k)] = received_us
            if sn > high + 1 and self.history is not None:
                # A gap: what CTWing did not push may be in its history. From the newest uplink
                # before the gap (or the lookback, for a device with no platform time yet).
                device = self._by_token[token]
                self._refetch.setdefault(device.device_id, st.get("ts"))
            st["sn"] = sn
        else:
            missing.pop(str(sn), None)  # a late (reordered or retried) uplink fills its gap

    def _row(self, step: _Step, device: HubDevice, kind: str, msg_id: str, payload: dict[str, Any], at: int) -> None:
        topic = f"{self.prefix}/{self.community_id}/{device.family}/{device.device_id}/{kind}"
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        sealed = self.sealer.seal("pending_rows", json.dumps([msg_id, topic, body.decode(), None]).encode())
        step.rows.append((device.stream, at, sealed))

    def _alarm(self, step: _Step, device: HubDevice, alarm_id: str, alarm_type: str, state: str, event_ms: int,
               readings: dict[str, Any], key: str) -> None:  # fmt: skip
        self.stats.alarms += 1
        msg_id = self._key(f"{key}|{alarm_id}|{state}").hex()
        payload = {"msg_id": msg_id, "device_id": device.device_id, "event_time": iso(event_ms), **device.fixed,
                   **readings, "alarm_id": alarm_id, "alarm_type": alarm_type, "alarm_state": state,
                   "severity": SEVERITY[alarm_type]}  # fmt: skip
        topic = f"{self.prefix}/{self.community_id}/{device.family}/{device.device_id}/alarm"
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        step.outbox.append(self.sealer.seal("outbox", json.dumps([topic, body]).encode()))

    def _reject(self, step: _Step, carrier: str, body: bytes, received_us: int, reason: str) -> None:
        """Land what cannot be read under `_rejects`, with a reason naming a field (never a value)."""
        self.stats.rejects += 1
        msg_id = "carrier-" + self._key(f"reject|{carrier}|{received_us}|" + hashlib.sha256(body).hexdigest()).hex()
        row = [msg_id, f"carrier/{carrier}", body.decode(errors="replace"), reason]
        sealed = self.sealer.seal("pending_rows", json.dumps(row).encode())
        step.rows.append((REJECTS, received_us, sealed))

    def _event(self, step: _Step, at_us: int, token: str | None, event: str, detail: dict[str, Any] | None) -> None:
        self.stats.events[event] = self.stats.events.get(event, 0) + 1
        step.events.append((at_us, token, event, json.dumps(detail) if detail else None))

    # --- re-fetching what CTWing did not push ------------------------------------------------

    def _refetch_due(self) -> None:
        now = self.clock()
        if self._refetch_all_at and now >= self._refetch_all_at[0]:
            self._refetch_all_at.pop(0)
            for device in self.register.devices:
                if device.carrier == "ctwing":
                    st = self._states.get(self._tokens[device.device_id]) or {}
                    self._refetch[device.device_id] = st.get("ts")
        if not self._refetch or now < self._refetch_not_before:
            return
        by_id = {d.device_id: d for d in self.register.devices}
        end_ms = int(now * 1000) + 1  # exclusive: everything the platform holds up to now
        lookback_ms = self.config.refetch_lookback_seconds * 1000
        for device_id, since in list(self._refetch.items()):
            device = by_id[device_id]
            begin_ms = since if since is not None else end_ms - lookback_ms
            try:
                assert self.history is not None
                items = self.history.uplinks(device.product_id, device.carrier_device_id, begin_ms, end_ms)
            except RetriableError as exc:  # the platform is down or refuses: try again later
                log.warning("carrier inbox: re-fetch postponed (%s)", exc)
                self._refetch_not_before = now + self.config.refetch_retry_seconds
                return
            self._refetched(device, items)
            del self._refetch[device_id]

    def _refetched(self, device: HubDevice, items: list[dict[str, Any]]) -> None:
        """Process re-fetched uplinks as the data reports CTWing would have pushed (in time order)."""
        step = _Step()
        received_us = int(self.clock() * 1_000_000)
        for item in sorted(items, key=_platform_time):
            self.stats.refetched += 1
            message = {"messageType": "dataReport", "deviceId": device.carrier_device_id,
                       "productId": device.product_id, "timestamp": item.get("timestamp"),
                       "serviceId": item.get("serviceId", ""), "upPacketSN": -1, "payload": item.get("payload"),
                       "refetched": True}  # fmt: skip
            body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
            self._ctwing(step, message, body, received_us)
        self._commit(step, None)

    # --- landing, watermark, sweeps ---------------------------------------------------------

    def _land_pending(self, limit: int = 50_000) -> None:
        query = "SELECT id, stream, received_us, sealed FROM pending_rows WHERE id <= ? ORDER BY id LIMIT ?"
        # A landing a crash interrupted is redone with exactly the same rows, so under the same name.
        upto = self._progress("landing_upto")
        rows = self.conn.execute(query, (upto, limit)).fetchall() if upto else []
        if not rows:
            rows = self.conn.execute(query, (2**62, limit)).fetchall()
            if not rows:
                return
            with transaction(self.conn) as c:
                c.execute("INSERT OR REPLACE INTO progress (name, value) VALUES ('landing_upto', ?)", (rows[-1][0],))
        landed: list[landing.LandedRow] = []
        for _, stream, received_us, sealed in rows:
            msg_id, topic, payload, problem = json.loads(self.sealer.open("pending_rows", sealed))
            landed.append((stream, msg_id, topic, payload.encode(), received_us, problem))
        # Named by the ids it holds: after a crash before the delete below, the same rows are landed
        # again under the same name (`landing_upto`), replacing the file rather than doubling its rows.
        files = landing.land(self.keys, self.root, landed, f"inbox-{rows[0][0]:012d}-{rows[-1][0]:012d}")
        with transaction(self.conn) as c:
            c.execute("DELETE FROM pending_rows WHERE id <= ?", (rows[-1][0],))
        self.stats.landed_rows += len(rows)
        self.stats.landed_files += len(files)

    def on_landed(self) -> None:
        """Called after each landing (the worker process publishes its counts here)."""

    def sweep(self) -> None:
        """Silent devices and gaps that did not fill within the grace period become events."""
        now_us = int(self.clock() * 1_000_000)
        step = _Step()
        grace = self.config.gap_grace_seconds * 1_000_000
        for device in self.register.devices:
            token = self._tokens[device.device_id]
            st = self._states.get(token) or self._state(step, token)
            expired = [sn for sn, noticed in st["missing"].items() if now_us - noticed > grace]
            if expired:
                for sn in expired:
                    del st["missing"][sn]
                step.touched.add(token)
                self._event(step, now_us, token, "gap", {"missing": len(expired)})
            product = self.config.product(device.carrier, device.product_id)
            silent_after = (product.silent_after_seconds if product else 3 * 3600) * 1_000_000
            if not st["silent"] and now_us - st["seen_us"] > silent_after:
                st["silent"] = True
                step.touched.add(token)
                self._event(step, now_us, token, "silent", {"seconds": (now_us - st["seen_us"]) // 1_000_000})
                if device.stream == "home_safety":  # a detector that stops reporting protects no one
                    alarm_id = "A" + self._key(f"silent|{device.device_id}|{now_us}").hex()[:15].upper()
                    st["fault"] = alarm_id
                    self._alarm(step, device, alarm_id, "fault", "raised", now_us // 1000, {}, f"silent|{token}")
        if step.events or step.outbox or step.touched:
            self._commit(step, None)
        found: dict[str, int] = defaultdict(int)
        for _, _, event, detail in step.events:
            found[event] += json.loads(detail).get("missing", 1) if event == "gap" and detail else 1
        if found:  # counts only: which devices is in the events table, under pseudonyms
            log.info("carrier inbox: %d devices fell silent, %d uplinks missing after the grace period",
                     found["silent"], found["gap"])  # fmt: skip

    def _prune(self) -> None:
        now_us = int(self.clock() * 1_000_000)
        for shard, conn in enumerate(self.shards):
            with transaction(conn) as p:  # hourly: its writer waits on this one short delete
                p.execute(
                    "DELETE FROM pushes WHERE seq <= ? AND received_us < ?",
                    (self._progress(self._processed(shard)), now_us - self.config.keep_processed_hours * 3_600_000_000),
                )
        with transaction(self.conn) as c:
            c.execute("DELETE FROM seen WHERE at_us < ?", (now_us - self.config.dedupe_hours * 3_600_000_000,))
            c.execute("DELETE FROM events WHERE at_us < ?", (now_us - 30 * 86_400_000_000,))
        # Landed windows are pruned by the collector, which prunes every stream of the landing.

    def events(self) -> list[tuple[str | None, str, dict[str, Any] | None]]:
        """Every recorded event: (device pseudonym, event, detail)."""
        rows = self.conn.execute("SELECT device, event, detail FROM events ORDER BY id").fetchall()
        return [(d, e, json.loads(x) if x else None) for d, e, x in rows]

    def device_of(self, token: str) -> HubDevice | None:
        return self._by_token.get(token)

    def close(self) -> None:
        self.conn.close()
        for conn in self.shards:
            conn.close()
        if self.history is not None:
            self.history.close()
        self._lock.close()  # releases the processor lock


def _platform_time(item: dict[str, Any]) -> int:
    ts = item.get("timestamp")
    return ts if isinstance(ts, int) else 0


def _exclusive(state_path: Path, wait_seconds: float = 60.0) -> IO[bytes]:
    """The processor's lock: one processor per inbox, even while a killed inbox's worker is still
    exiting (two would process the same pushes twice)."""
    handle = open(state_path.with_name(state_path.name + ".lock"), "ab")  # noqa: SIM115 - held for the processor's life
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                raise ConfigError(
                    "carrier inbox: another processor holds this inbox (is another `neuron inbox` running?)"
                ) from None
            time.sleep(0.1)


def write_watermark(files: InboxFiles, root: Path, through_us: int) -> None:
    """The inbox's landing watermark: everything received before `through_us` (taken from the store
    before calling) that is still unprocessed or unlanded holds it back."""
    state = connect(files.state_path, files.synchronous)
    try:
        state.execute("BEGIN")  # one snapshot of progress and pending rows
        progress = dict(state.execute("SELECT name, value FROM progress").fetchall())
        oldest = [state.execute("SELECT MIN(received_us) FROM pending_rows").fetchone()[0]]
        state.execute("COMMIT")
    finally:
        state.close()
    for shard, path in enumerate(files.paths):
        conn = connect(path, files.synchronous)
        try:
            query = "SELECT MIN(received_us) FROM pushes WHERE seq > ?"
            oldest.append(conn.execute(query, (progress.get(Processor._processed(shard), 0),)).fetchone()[0])
        finally:
            conn.close()
    for found in oldest:
        if found is not None:
            through_us = min(through_us, int(found))
    write_writer_watermark(root, "inbox", through_us, STREAMS)
