"""Small hand-written device fixtures for the mart tests: raw rows as the sources send them,
staged the real way (de-identification with the real keys and policies, the idempotent
batch load into a real DuckDB file), and helpers that read what each consumer was given.

The alarm lifecycle stream belongs to the relay (issue 7); its contract is written here
from the agreed interface (exactly its fields), so these tests do not wait for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select

from kernel.settings import Settings
from privacy.deidentify import deidentify, staging_derivations, staging_key
from privacy.keys import HubKeys, init_keys
from privacy.policy import Policy, load_policies
from privacy.pseudonymise import pseudonym
from schemas.contract import Contract, load_contract
from schemas.feeds import load_feeds
from tests.conftest import make_settings
from warehouse.control import session_scope
from warehouse.migrations import migrate
from warehouse.models import Partition
from warehouse.recipients import recipients_by_policy
from warehouse.staging import load_batch

COMMUNITY = "music-square"
CONSUMERS = ("district", "open_data", "public_security")


def at(text: str) -> datetime:
    """A UTC instant written as "2026-11-20T01:05:00" (fixtures are written in UTC)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def new_hub(home: Path) -> Settings:
    """A private hub with keys and an empty control database."""
    settings = make_settings(home)
    init_keys(settings)
    migrate(settings.control_url)
    return settings


def policies(settings: Settings) -> dict[str, Policy]:
    return load_policies(settings.policies_dir)


def _field(name: str, type_: str, privacy: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "privacy": privacy, "description": {"zh": name, "en": name}, **extra}


ALARM_LIFECYCLE = Contract.model_validate(
    {
        "name": "alarm_lifecycle",
        "version": 1,
        "system": 3,
        "title": {"zh": "告警生命周期", "en": "Alarm lifecycle"},
        "primary_key": ["event_id"],
        "cursor_field": "recorded_at",
        "event_time": "event_time",
        "source": {"family": "relay_lifecycle", "schedule": "*/15 * * * *", "title": "Alarm lifecycle events"},
        "fields": [
            _field("event_id", "string", "public"),
            _field("alarm_id", "string", "public"),
            _field("community_id", "string", "public"),
            _field("family", "string", "public"),
            _field("category", "string", "public"),
            _field("severity", "string", "public"),
            _field("state", "string", "public"),
            _field("building", "string", "quasi"),
            _field("unit", "string", "quasi"),
            _field("room_no", "string", "direct", identifier="room"),
            _field("device_id", "string", "public"),
            _field("household", "string", "public"),  # the hub's token (consent), null for public devices
            _field("detected_at", "timestamp", "quasi"),
            _field("event_time", "timestamp", "quasi"),
            _field("actor", "string", "public"),
            _field("recorded_at", "timestamp", "public"),
        ],
    }
)


def contract_of(stream: str) -> Contract:
    return ALARM_LIFECYCLE if stream == ALARM_LIFECYCLE.name else load_contract(stream)


def stage(settings: Settings, stream: str, batch: str, rows: Iterable[dict[str, Any]]) -> None:
    """De-identify raw rows as the pipeline does (tokens, per-consumer sealed columns) and load
    them as one batch of the stream's staging table."""
    contract = contract_of(stream)
    raw = pa.Table.from_pylist([{"community_id": COMMUNITY, **r} for r in rows], schema=contract.arrow_schema())
    plan = staging_derivations(contract, load_feeds(), policies(settings), recipients_by_policy(settings))
    batch_id = f"{stream}/{COMMUNITY}/{batch}"
    staged = deidentify(contract, raw, HubKeys.load(settings), plan).append_column(
        "_batch_id", pa.array([batch_id] * raw.num_rows, pa.string())
    )
    no_rejects = pa.table({"_reason": pa.array([], pa.string())})
    with duckdb.connect(str(settings.warehouse_file)) as con:
        con.execute("SET TimeZone = 'UTC'")
        load_batch(con, contract, batch_id, staged, no_rejects)


def tokens(settings: Settings, table: str, column: str) -> set[str]:
    """The staging tokens of one column (hub-internal: no consumer may ever see them)."""
    with duckdb.connect(str(settings.warehouse_file), read_only=True) as con:
        return {
            r[0] for r in con.execute(f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL").fetchall()
        }


def versions(settings: Settings, feed: str | None = None) -> list[tuple[str, str, str, int, str]]:
    """(consumer, feed, partition, version, sha256) of every published partition version."""
    with session_scope(settings.control_url) as s:
        query = select(Partition.consumer, Partition.feed, Partition.partition_key, Partition.version, Partition.sha256)
        if feed is not None:
            query = query.where(Partition.feed == feed)
        rows = s.execute(query.order_by(Partition.seq)).all()
    return [(c, f, k, v, h) for c, f, k, v, h in rows]


def consumer_partitions(settings: Settings, consumer: str, feed: str) -> dict[str, pa.Table]:
    """The newest version of each partition of `feed` published for `consumer`, by day."""
    with session_scope(settings.control_url) as s:
        rows = s.execute(
            select(Partition.partition_key, Partition.path)
            .where(Partition.consumer == consumer, Partition.feed == feed)
            .order_by(Partition.version)
        ).all()
    latest = dict(rows)  # later versions overwrite earlier ones
    return {key.rsplit("day=", 1)[1]: pq.read_table(settings.lake_path / path) for key, path in sorted(latest.items())}


# Days are Shanghai's: 2026-11-20 local runs from 2026-11-19T16:00Z to 2026-11-20T16:00Z.


def env(msg: str, station: str, when: str, pm25: float, pm10: float, *rest: float | None) -> dict[str, Any]:
    noise, temperature, humidity = (*rest, None, None, None)[:3]
    place = {"ENV01": "北门广场", "ENV02": "中心花园"}[station]
    t = at(when)
    return {
        "msg_id": msg, "device_id": station, "kind": "telemetry", "event_time": t, "received_at": t,
        "location": place, "pm25": pm25, "pm10": pm10, "noise_db": noise, "temperature_c": temperature,
        "humidity_pct": humidity,
    }  # fmt: skip


ENVIRONMENT = [
    env("e1", "ENV01", "2026-11-20T01:05:00", 30, 50, 50, 15.0, 60),
    env("e2", "ENV01", "2026-11-20T01:25:00", 34, 58, 60, 15.4, 62),
    env("e3", "ENV01", "2026-11-20T01:45:00", 35, 55),  # no noise, temperature or humidity sensor reading
    env("e4", "ENV01", "2026-11-20T02:10:00", 40, 70, 55, 16.0, 58),
    env("e5", "ENV02", "2026-11-19T16:30:00", 20, 30, 45, 12.0, 70),  # 00:30 local: the 20th
    env("e6", "ENV02", "2026-11-19T15:30:00", 22, 33, 47, 12.5, 71),  # 23:30 local: the 19th
]
ENVIRONMENT_REDELIVERED = [ENVIRONMENT[1]]  # e2 again in the next window (MQTT QoS 1)


def lamp(msg: str, device: str, when: str, state: str, brightness: int, energy: float) -> dict[str, Any]:
    t = at(when)
    return {
        "msg_id": msg, "device_id": device, "kind": "telemetry", "event_time": t, "received_at": t,
        "lamp_state": state, "brightness_pct": brightness, "power_w": 60.0 * brightness / 100, "energy_kwh": energy,
        "voltage_v": 220.0,
    }  # fmt: skip


def lamp_alarm(msg: str, device: str, when: str, alarm: str, fault: str, state: str) -> dict[str, Any]:
    t = at(when)
    return {
        "msg_id": msg, "device_id": device, "kind": "alarm", "event_time": t, "received_at": t,
        "alarm_id": alarm, "fault_code": fault, "alarm_state": state, "severity": "major",
    }  # fmt: skip


STREETLIGHTS = [
    lamp("l1", "SL001", "2026-11-19T15:45:00", "on", 80, 100.0),  # 23:45 local, the 19th
    lamp("l2", "SL001", "2026-11-19T16:15:00", "on", 80, 100.5),  # 00:15 local, the 20th
    lamp("l3", "SL001", "2026-11-20T01:00:00", "off", 0, 101.0),
    lamp_alarm("a1", "SL001", "2026-11-20T02:00:00", "SLA1", "lamp_failure", "raised"),
    lamp_alarm("a2", "SL001", "2026-11-20T03:00:00", "SLA1", "lamp_failure", "cleared"),
    lamp("l4", "SL001", "2026-11-20T09:00:00", "dimmed", 40, 0.2),  # the meter was replaced: reset
    lamp("l5", "SL001", "2026-11-20T10:00:00", "on", 100, 0.5),
    lamp_alarm("a3", "SL002", "2026-11-20T04:00:00", "SLA2", "power_loss", "raised"),
    lamp_alarm("a4", "SL002", "2026-11-20T04:01:00", "SLA3", "comm_loss", "raised"),
]


def cover(msg: str, when: str, state: str | None, tilt: float, water: float, battery: int | None) -> dict[str, Any]:
    t = at(when)
    return {
        "msg_id": msg, "device_id": "MH01", "kind": "status", "event_time": t, "received_at": t,
        "cover_type": "sewage", "cover_state": state, "tilt_deg": tilt, "water_level_cm": water,
        "battery_pct": battery,
    }  # fmt: skip


def cover_alarm(msg: str, when: str, state: str, water: float | None) -> dict[str, Any]:
    t = at(when)
    return {
        "msg_id": msg, "device_id": "MH01", "kind": "alarm", "event_time": t, "received_at": t,
        "cover_type": "sewage", "alarm_id": "MHA1", "alarm_type": "water_level", "alarm_state": state,
        "severity": "major", "water_level_cm": water,
    }  # fmt: skip


MANHOLE_COVERS = [
    cover("m1", "2026-11-20T00:00:00", "closed", 0.5, 10.0, 90),
    cover_alarm("m2", "2026-11-20T04:00:00", "raised", 80.0),
    cover("m3", "2026-11-20T05:00:00", "closed", 1.0, 60.0, 89),
    cover_alarm("m4", "2026-11-20T06:00:00", "cleared", None),
]
MANHOLE_COVERS_REDELIVERED = [MANHOLE_COVERS[2]]


# Eight wearers (raw ids as the wristbands send them), one per household. Households 1–6 opted
# in to elderly care; 7 opted in and later withdrew; 8 opted in to smoke and gas detection only.
WEARERS = {n: (f"R0000000{n}", f"H00010{n}", f"WB00000{n}") for n in range(1, 9)}


def consent(wearer: int, function: str, granted: bool, when: str) -> dict[str, Any]:
    household = WEARERS[wearer][1]
    t = at(when)
    return {
        "consent_id": f"CS-{household}-{function}", "household_id": household, "function": function,
        "granted": granted, "changed_at": t, "updated_at": t,
    }  # fmt: skip


PLATFORM_CONSENT = [
    *(consent(n, "elderly_care", True, "2026-11-01T02:00:00") for n in range(1, 7)),
    consent(7, "elderly_care", True, "2026-11-01T02:00:00"),
    consent(8, "smoke_gas", True, "2026-11-01T02:00:00"),
]
# Household 7's withdrawal, a later change of the same consent row (the latest change wins).
PLATFORM_CONSENT_WITHDRAWN = [consent(7, "elderly_care", False, "2026-11-21T03:00:00")]


def band(msg: str, wearer: int, when: str, **alarm: str) -> dict[str, Any]:
    resident, household, wristband = WEARERS[wearer]
    t = at(when)
    row = {
        "msg_id": msg, "device_id": wristband, "kind": "alarm" if alarm else "telemetry", "event_time": t,
        "received_at": t, "resident_id": resident, "household_id": household, "building": 3, "unit": wearer % 2 + 1,
        "battery_pct": 70,
    }  # fmt: skip
    if not alarm:
        row |= {"heart_rate_bpm": 70 + wearer, "steps": 1000 * wearer, "worn": True}
    return row | {f"alarm_{k}": v for k, v in alarm.items()}


ELDERLY_CARE = [
    *(band(f"t{n}", n, "2026-11-20T00:10:00") for n in range(1, 7)),  # six people report on the 20th
    band("c1", 1, "2026-11-20T01:00:00", id="AL1", type="fall", state="raised"),
    band("c2", 1, "2026-11-20T01:03:00", id="AL1", state="cleared"),  # 3 min
    band("c3", 1, "2026-11-20T02:00:00", id="AL2", type="fall", state="raised"),
    band("c4", 1, "2026-11-20T02:05:00", id="AL2", state="cleared"),  # exactly 5 min: within 5
    band("c5", 2, "2026-11-20T03:00:00", id="AL3", type="fall", state="raised"),
    band("c6", 2, "2026-11-20T03:10:00", id="AL3", state="cleared"),  # 10 min
    band("c7", 3, "2026-11-20T04:00:00", id="AL4", type="fall", state="raised"),
    band("c8", 3, "2026-11-20T04:20:00", id="AL4", state="cleared"),  # 20 min
    band("c9", 4, "2026-11-20T05:00:00", id="AL5", type="fall", state="raised"),
    band("c10", 4, "2026-11-20T05:04:00", id="AL5", state="cleared"),  # 4 min
    band("c11", 5, "2026-11-20T06:00:00", id="AL6", type="sos", state="raised"),  # never cleared
    *(band(f"u{n}", n, "2026-11-21T00:10:00") for n in range(1, 4)),  # three people on the 21st
    band("c12", 2, "2026-11-21T01:00:00", id="AL7", type="heart_rate_high", state="raised"),
    band("c13", 2, "2026-11-21T01:02:00", id="AL7", state="cleared"),
    band("c14", 1, "2026-11-21T02:00:00", id="AL8", state="cleared"),  # its raise is not loaded
    # Households without elderly-care consent: never counted, not even their alerts.
    band("t7", 7, "2026-11-20T00:10:00"),
    band("c15", 7, "2026-11-20T07:00:00", id="AL9", type="fall", state="raised"),
    band("c16", 7, "2026-11-20T07:01:00", id="AL9", state="cleared"),
    band("t8", 8, "2026-11-20T00:10:00"),
    band("c17", 8, "2026-11-20T08:00:00", id="AL10", type="sos", state="raised"),
]

# Raw rooms as the relay records them (only sealed values and tokens may ever leave).
ROOMS = {"ALM-1": "3-2-1203", "ALM-3": "5-1-0602"}


def event(
    event_id: str, alarm: str, state: str, when: str, severity: str, actor: str = "device", **extra: Any
) -> dict[str, Any]:
    family, category, building, unit = {
        "ALM-1": ("home-safety", "smoke", "3", "2"),
        "ALM-2": ("fence", "fence_intrusion", None, None),
        "ALM-3": ("wristband", "fall", "5", "1"),
    }[alarm]
    t = at(when)
    return {
        "event_id": event_id, "alarm_id": alarm, "family": family, "category": category, "severity": severity,
        "state": state, "building": building, "unit": unit, "room_no": ROOMS.get(alarm),
        "device_id": f"dev-{alarm.lower()}", "detected_at": extra.pop("detected_at", t), "event_time": t,
        "actor": actor, "recorded_at": t, **extra,
    }  # fmt: skip


ALARM_EVENTS = [
    event("ev1", "ALM-1", "raised", "2026-11-20T02:00:00", "high", detected_at=at("2026-11-20T01:59:58")),
    event("ev2", "ALM-1", "updated", "2026-11-20T02:01:00", "critical"),
    event("ev3", "ALM-1", "escalated", "2026-11-20T02:03:00", "critical", "relay"),
    event("ev4", "ALM-1", "acknowledged", "2026-11-20T02:04:30", "critical", "public_security"),
    event("ev5", "ALM-1", "acknowledged", "2026-11-20T02:05:00", "critical", "district"),
    event("ev6", "ALM-1", "cleared", "2026-11-20T02:20:00", "low"),
    event("ev7", "ALM-2", "raised", "2026-11-19T16:10:00", "medium"),  # 00:10 local: the 20th
    event("ev8", "ALM-2", "acknowledged", "2026-11-19T16:12:05.600000", "medium", "district"),
    event("ev9", "ALM-3", "raised", "2026-11-19T15:00:00", "high"),  # 23:00 local: the 19th
]
ALARM_EVENTS_RECORDED_TWICE = [ALARM_EVENTS[6]]
# The household of each in-home alarm: the smoke detector's opted in to smoke_gas, the fallen
# wearer's to elderly care. The relay records it as the hub's token (`with_households`).
ALARM_HOUSEHOLDS = {"ALM-1": WEARERS[8][1], "ALM-3": WEARERS[1][1]}


def household_token(settings: Settings, household: str) -> str:
    return pseudonym(staging_key(HubKeys.load(settings), "household"), household)


def with_households(settings: Settings, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events as the relay records them: an in-home alarm's household as the hub's token."""
    return [
        {**e, "household": household_token(settings, h) if (h := ALARM_HOUSEHOLDS.get(e["alarm_id"])) else None}
        for e in events
    ]
