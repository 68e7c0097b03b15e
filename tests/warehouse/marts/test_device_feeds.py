"""The device feeds (env.air_quality_hourly, infra.assets_status, care.elderly_daily,
safety.alarms): each mart built from a small hand-written staging fixture in a real DuckDB
file and compared with rows computed by hand; then published for every consumer by the real
publisher: only the fields its policy grants, small cells suppressed under k, no identifier
past the warehouse; a late reading makes one new version of one partition, a re-run none."""

from __future__ import annotations

import json
import random
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

import pipeline
from api.consumers import register_consumer
from kernel.settings import Settings
from privacy.deidentify import staging_key
from privacy.keys import HubKeys
from privacy.pseudonymise import pseudonym
from privacy.seal import open_sealed
from schemas.feeds import load_feeds
from tests.leaks import find_leaks, jws_payloads, texts_of_lake
from tests.warehouse.marts.fixtures_devices import (
    ALARM_EVENTS,
    ALARM_EVENTS_RECORDED_TWICE,
    ALARM_HOUSEHOLDS,
    CONSUMERS,
    ELDERLY_CARE,
    ENVIRONMENT,
    ENVIRONMENT_REDELIVERED,
    MANHOLE_COVERS,
    MANHOLE_COVERS_REDELIVERED,
    PLATFORM_CONSENT,
    PLATFORM_CONSENT_WITHDRAWN,
    ROOMS,
    STREETLIGHTS,
    WEARERS,
    at,
    consumer_partitions,
    env,
    household_token,
    new_hub,
    stage,
    tokens,
    versions,
    with_households,
)
from warehouse.consent import Function, record_consent
from warehouse.recipients import register_encryption_key

ENV, INFRA, CARE, ALARMS = "env.air_quality_hourly", "infra.assets_status", "care.elderly_daily", "safety.alarms"
C = "music-square"
D19, D20, D21 = date(2026, 11, 19), date(2026, 11, 20), date(2026, 11, 21)
POLICE = X25519PrivateKey.generate()


def _pem(public: Any) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Every device stream staged (with a redelivered message each), marts built, all four feeds
    published. Public security registered its encryption key before the alarms were staged."""
    settings = new_hub(tmp_path_factory.mktemp("devices"))
    register_consumer(settings, "public_security", _pem(Ed25519PrivateKey.generate().public_key()))
    register_encryption_key(settings, "public_security", _pem(POLICE.public_key()))
    stage(settings, "environment", "w1", ENVIRONMENT)
    stage(settings, "environment", "w2", ENVIRONMENT_REDELIVERED)
    stage(settings, "streetlights", "w1", STREETLIGHTS)
    stage(settings, "manhole_covers", "w1", MANHOLE_COVERS)
    stage(settings, "manhole_covers", "w2", MANHOLE_COVERS_REDELIVERED)
    stage(settings, "elderly_care", "w1", ELDERLY_CARE)
    stage(settings, "platform_consent", "w1", PLATFORM_CONSENT)
    stage(settings, "platform_consent", "w2", PLATFORM_CONSENT_WITHDRAWN)
    # The platform's consents as its connector records them (staged here without the pipeline).
    in_home: list[tuple[str, Function]] = [("ALM-1", "smoke_gas"), ("ALM-3", "elderly_care")]
    for alarm_id, function in in_home:
        token = household_token(settings, ALARM_HOUSEHOLDS[alarm_id])
        record_consent(settings, token, function, True, "platform", contracts=[])
    stage(settings, "alarm_lifecycle", "w1", with_households(settings, ALARM_EVENTS))
    stage(settings, "alarm_lifecycle", "w2", with_households(settings, ALARM_EVENTS_RECORDED_TWICE))
    assert {"30_env_air_quality_hourly", "31_infra_assets_status", "32_care_elderly_daily", "33_safety_alarms"} <= set(
        pipeline.build(settings)
    )
    pipeline.publish(settings, feeds=[ENV, INFRA, CARE, ALARMS])
    return settings


def mart_rows(settings: Settings, feed_name: str, order: str) -> list[tuple[Any, ...]]:
    feed = load_feeds()[feed_name]
    with duckdb.connect(str(settings.warehouse_file), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        table = con.sql(f"SELECT {', '.join(feed.field_names())} FROM {feed.mart} ORDER BY {order}").to_arrow_table()
    return rows_of(table)


def rows_of(table: pa.Table) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in table.to_pylist()]


def published(settings: Settings, consumer: str, feed: str) -> dict[date, list[tuple[Any, ...]]]:
    return {date.fromisoformat(day): rows_of(t) for day, t in consumer_partitions(settings, consumer, feed).items()}


# ---------------------------------------------------------------------------------------------
# env.air_quality_hourly. ENV01 01:00Z: e1, e2 (received twice: once), e3. PM2.5 (30+34+35)/3 = 33.0;
# PM10 (50+58+55)/3 = 54.33 → 54.3; noise LAeq = 10·log10((10^5.0 + 10^6.0)/2) = 10·log10(550000)
# = 57.40 → 57.4 (the plain mean would say 55); e3 has no noise/temperature/humidity: means over
# e1, e2. ENV02's two readings fall on either side of local midnight (UTC+8).
ENV_ROWS = [
    (C, D20, at("2026-11-20T01:00:00"), "ENV01", "北门广场", 3, 33.0, 35.0, 54.3, 58.0, 57.4, 60.0, 15.2, 61.0),
    (C, D20, at("2026-11-20T02:00:00"), "ENV01", "北门广场", 1, 40.0, 40.0, 70.0, 70.0, 55.0, 55.0, 16.0, 58.0),
    (C, D19, at("2026-11-19T15:00:00"), "ENV02", "中心花园", 1, 22.0, 22.0, 33.0, 33.0, 47.0, 47.0, 12.5, 71.0),
    (C, D20, at("2026-11-19T16:00:00"), "ENV02", "中心花园", 1, 20.0, 20.0, 30.0, 30.0, 45.0, 45.0, 12.0, 70.0),
]
ENV_FIELDS = [
    "community_id", "day", "hour_start", "device_id", "location", "readings", "pm25_avg", "pm25_max", "pm10_avg",
    "pm10_max", "noise_laeq_db", "noise_lamax_db", "temperature_avg_c", "humidity_avg_pct",
]  # fmt: skip


def test_air_quality_per_station_and_hour(hub: Settings) -> None:
    assert mart_rows(hub, ENV, "device_id, hour_start") == ENV_ROWS
    for consumer in ("district", "open_data"):
        # Public-space readings, nothing about people: both get every field, in the feed's order.
        assert published(hub, consumer, ENV) == {D19: [ENV_ROWS[2]], D20: [ENV_ROWS[0], ENV_ROWS[1], ENV_ROWS[3]]}
        for table in consumer_partitions(hub, consumer, ENV).values():
            assert table.column_names == ENV_FIELDS
    assert published(hub, "public_security", ENV) == {}


# ---------------------------------------------------------------------------------------------
# infra.assets_status. SL001 on the 20th: reports l2 l3 l4 l5, last l5 (on, 100 %); energy: the
# gains ending that day, l1→l2 0.5 (across midnight) + l2→l3 0.5 + l3→l4 reset (−100.8: nothing)
# + l4→l5 0.3 = 1.3 kWh; on the 19th its only reading has no earlier one: 0.0. SL002 sent only two
# alarms. MH01: m3 received twice counts once; battery of the last report; greatest tilt 1.0 and
# water 80 (the alarm's reading).
INFRA_ROWS = [
    (C, D19, "streetlight", "SL001", None, "on", at("2026-11-19T15:45:00"), 1, 0, 0, None, 80, 0.0, None, None, None),
    (C, D20, "manhole_cover", "MH01", "sewage", "closed", at("2026-11-20T05:00:00"), 2, 1, 1, "water_level",
     None, None, 89, 1.0, 80.0),
    (C, D20, "streetlight", "SL001", None, "on", at("2026-11-20T10:00:00"), 4, 1, 1, "lamp_failure", 100, 1.3,
     None, None, None),
    (C, D20, "streetlight", "SL002", None, None, None, 0, 2, 0, "comm_loss,power_loss", None, None, None, None, None),
]  # fmt: skip
INFRA_FIELDS = [
    "community_id", "day", "asset_type", "device_id", "cover_type", "state", "last_report_at", "reports",
    "faults_raised", "faults_cleared", "fault_types", "brightness_pct", "energy_kwh", "battery_pct", "tilt_deg_max",
    "water_level_cm_max",
]  # fmt: skip


def test_streetlights_and_manhole_covers_per_asset_and_day(hub: Settings) -> None:
    assert mart_rows(hub, INFRA, "day, asset_type, device_id") == INFRA_ROWS
    for consumer in ("district", "open_data"):
        assert published(hub, consumer, INFRA) == {D19: INFRA_ROWS[:1], D20: INFRA_ROWS[1:]}
        for table in consumer_partitions(hub, consumer, INFRA).values():
            assert table.column_names == INFRA_FIELDS
    assert published(hub, "public_security", INFRA) == {}


# ---------------------------------------------------------------------------------------------
# care.elderly_daily. The 20th: six wearers; alerts AL1–AL5 falls, AL6 SOS (never cleared) by five
# people; responses 3, 5 (the band's edge), 10, 20, 4 min. The 21st: three wearers, one heart-rate
# alert cleared in 2 min; AL8's clear has no raise loaded: not an alert. Wearers 7 (consent
# withdrawn) and 8 (never gave it for elderly care) and their alerts AL9, AL10 are not counted.
CARE_ROWS = [
    # people, alerted, alerts, falls, sos, heart, ≤5, 5–15, >15, unresolved
    (C, D20, 6, 5, 6, 5, 1, 0, 3, 1, 1, 1),
    (C, D21, 3, 1, 1, 0, 0, 1, 1, 0, 0, 0),
]
# The district's view under k = 5. The 20th: SOS 1 and the bands 3, 1, 1, 1 are below k; SOS
# alone in `alerts = falls + sos + heart` could be recomputed (6 − 5 − 0), so falls (5, the
# smallest non-zero left) goes too; the bands hidden add up to 6 ≥ k. Zeros stay. The 21st: every
# non-zero count is below k.
CARE_DISTRICT = {
    D20: [(C, D20, 6, 5, 6, None, None, 0, None, None, None, None)],
    D21: [(C, D21, None, None, None, 0, 0, None, None, 0, 0, 0)],
}


def test_elderly_care_counts_with_small_cells_suppressed(hub: Settings) -> None:
    assert mart_rows(hub, CARE, "day") == CARE_ROWS
    assert published(hub, "district", CARE) == CARE_DISTRICT
    assert published(hub, "open_data", CARE) == published(hub, "public_security", CARE) == {}


# ---------------------------------------------------------------------------------------------
# safety.alarms. ALM-1: raised 02:00:00 (the relay's time, not the device's 01:59:58), highest
# severity critical (the clear says low), first acknowledged 02:04:30 by public security (270 s),
# cleared 02:20 (1200 s), escalated, one update. ALM-2 (public space, recorded twice): raised
# 00:10 local on the 20th, acknowledged after 125.6 s → 125. ALM-3: 23:00 local on the 19th.
def room_token(settings: Settings, room: str) -> str:
    return pseudonym(staging_key(HubKeys.load(settings), "room"), room)


def alarm_rows(settings: Settings) -> list[tuple[Any, ...]]:
    return [
        (C, D19, "ALM-3", "wristband", "fall", "high", "raised", at("2026-11-19T15:00:00"), None, None, None,
         None, None, False, 0, "5", "1", household_token(settings, ALARM_HOUSEHOLDS["ALM-3"]),
         room_token(settings, ROOMS["ALM-3"])),
        (C, D20, "ALM-2", "fence", "fence_intrusion", "medium", "acknowledged", at("2026-11-19T16:10:00"),
         at("2026-11-19T16:12:05.600000"), "district", None, 125, None, False, 0, None, None, None, None),
        (C, D20, "ALM-1", "home-safety", "smoke", "critical", "cleared", at("2026-11-20T02:00:00"),
         at("2026-11-20T02:04:30"), "public_security", at("2026-11-20T02:20:00"), 270, 1200, True, 1, "3", "2",
         household_token(settings, ALARM_HOUSEHOLDS["ALM-1"]), room_token(settings, ROOMS["ALM-1"])),
    ]  # fmt: skip


BUILDING_LEVEL = [
    "community_id", "day", "alarm_id", "family", "category", "severity", "state", "raised_at", "acknowledged_at",
    "acknowledged_by", "cleared_at", "response_seconds", "resolution_seconds", "escalated", "updates", "building",
]  # fmt: skip


def test_alarms_with_their_lifecycle_at_each_consumers_level(hub: Settings) -> None:
    expected = alarm_rows(hub)
    assert mart_rows(hub, ALARMS, "raised_at, alarm_id") == expected
    # The district: building level, and the fields the API's /v1/alarms test relies on.
    district = consumer_partitions(hub, "district", ALARMS)
    assert all(t.column_names == BUILDING_LEVEL for t in district.values())
    n = len(BUILDING_LEVEL)
    # The wristband's fall (ALM-3) is not among them: the district counts falls only in the care
    # feed, k-anonymous (issue 16: one row per alarm would undo its suppression).
    district_rows = published(hub, "district", ALARMS)
    assert {day: rows for day, rows in district_rows.items() if rows} == {D20: [r[:n] for r in expected[1:]]}
    # Public security: unit level, and the room sealed to its own key (no other key opens it).
    police = consumer_partitions(hub, "public_security", ALARMS)
    assert all(t.column_names == [*BUILDING_LEVEL, "unit", "room_no"] for t in police.values())
    opened = {
        day: [
            (*r[:-1], r[-1] and open_sealed(r[-1], POLICE, "room_no", consumer="public_security", feed=ALARMS))
            for r in day_rows
        ]
        for day, day_rows in published(hub, "public_security", ALARMS).items()
    }
    with_rooms = [(*r[:-2], ROOMS.get(r[2])) for r in expected]  # no household: only to check consent
    assert opened == {D19: with_rooms[:1], D20: with_rooms[1:]}
    assert published(hub, "open_data", ALARMS) == {}


def test_no_identifier_or_hub_token_reaches_any_consumer(hub: Settings) -> None:
    raw = [*ROOMS.values(), *(i for ids in WEARERS.values() for i in ids), *(r["consent_id"] for r in PLATFORM_CONSENT)]
    hub_tokens = [
        *tokens(hub, "stg_alarm_lifecycle", "room_no_token"),
        *tokens(hub, "stg_elderly_care", "resident_id_token"),
        *tokens(hub, "stg_elderly_care", "household_id_token"),
        *tokens(hub, "stg_elderly_care", "device_id_token"),
    ]
    assert len(hub_tokens) == 2 + 8 + 8 + 8
    assert find_leaks([*raw, *hub_tokens], texts_of_lake(hub.lake_path)) == []
    # Every consumer got something, and only from feeds its policy grants.
    granted = {(c, f) for c, f, *_ in versions(hub)}
    assert granted == {
        *((c, f) for c in ("district", "open_data") for f in (ENV, INFRA)),
        ("district", CARE),
        ("district", ALARMS),
        ("public_security", ALARMS),
    }
    assert {c for c, _ in granted} == set(CONSUMERS)


# ---------------------------------------------------------------------------------------------
def lake_files(settings: Settings) -> dict[str, bytes]:
    return {p.relative_to(settings.lake_path).as_posix(): p.read_bytes() for p in settings.lake_path.rglob("*.parquet")}


def manifest(settings: Settings, parquet: str) -> dict[str, Any]:
    jws = (settings.lake_path / parquet.replace(".parquet", ".manifest.jws")).read_text()
    return dict(json.loads(jws_payloads(jws)[0]))


def test_a_rerun_changes_no_byte_and_a_late_reading_makes_one_new_version(tmp_path: Path) -> None:
    hub = new_hub(tmp_path / "hub")
    stage(hub, "environment", "w1", ENVIRONMENT)
    pipeline.build(hub)
    first = pipeline.publish(hub, feeds=[ENV])
    keys = [f"community_id={C}/day={d}" for d in ("2026-11-19", "2026-11-20")]
    assert sorted((p.consumer, p.partition_key, p.version) for p in first) == [
        (c, k, 1) for c in ("district", "open_data") for k in keys
    ]
    before, files = versions(hub), lake_files(hub)

    # The same window again (a re-run of the DAG): staging replaced, marts rebuilt, nothing new.
    stage(hub, "environment", "w1", ENVIRONMENT)
    pipeline.build(hub)
    assert pipeline.publish(hub, feeds=[ENV]) == []
    assert versions(hub) == before and lake_files(hub) == files

    # Another hub given the same readings in another order and in two batches: the same bytes.
    twin = new_hub(tmp_path / "twin")
    shuffled = random.Random(5).sample(ENVIRONMENT, len(ENVIRONMENT))
    stage(twin, "environment", "a", shuffled[:3])
    stage(twin, "environment", "b", shuffled[3:])
    pipeline.build(twin)
    pipeline.publish(twin, feeds=[ENV])
    assert lake_files(twin) == files

    # A reading of the 19th arrives in the next window: one new version of that day only, per consumer.
    stage(hub, "environment", "w2", [env("e7", "ENV02", "2026-11-19T15:40:00", 26, 37, 49, 12.7, 72)])
    pipeline.build(hub)
    late = pipeline.publish(hub, feeds=[ENV])
    assert [(p.consumer, p.partition_key, p.version) for p in late] == [
        ("district", keys[0], 2),
        ("open_data", keys[0], 2),
    ]
    after = lake_files(hub)
    assert {k: v for k, v in after.items() if k in files} == files  # nothing overwritten
    for consumer in ("district", "open_data"):
        new = f"{consumer}/{ENV}/{keys[0]}/v2.parquet"
        assert manifest(hub, new)["supersedes"] == 1
        # ENV02 15:00Z now averages e6 and e7: LAeq 10·log10((10^4.7 + 10^4.9)/2) = 48.11 → 48.1.
        assert published(hub, consumer, ENV)[D19] == [
            (C, D19, at("2026-11-19T15:00:00"), "ENV02", "中心花园", 2, 24.0, 26.0, 35.0, 37.0, 48.1, 49.0, 12.6, 71.5)
        ]
