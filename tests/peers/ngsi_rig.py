"""A private hub for the NGSI-LD push tests (and the benchmark): settings under a temporary
home, a policy granting the district the three feeds that have an NGSI-LD rendering (alarms at
building level), published partitions written as the publisher writes them, and the peer
broker (simulator/ngsi_broker.py) on a free loopback port."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from kernel.push_settings import NgsiLdPush, PushSettings
from kernel.settings import Settings
from privacy.keys import HubKeys, init_keys
from privacy.policy import load_policies
from schemas.feeds import load_feeds
from tests.api.lake import ARROW, COMMUNITY, publish_table
from warehouse.migrations import migrate

AIR, ASSETS, ALARMS = "env.air_quality_hourly", "infra.assets_status", "safety.alarms"
DAY = date(2026, 11, 20)
START = datetime(2026, 11, 20, tzinfo=UTC)


def write_policy(folder: Path) -> Path:
    """The district's policy: every field of the air and asset feeds, alarms without unit or room."""
    feeds = load_feeds()
    grants: dict[str, Any] = {
        AIR: {"fields": dict.fromkeys(feeds[AIR].field_names(), "keep")},
        ASSETS: {"fields": dict.fromkeys(feeds[ASSETS].field_names(), "keep")},
        ALARMS: {
            "fields": {f: "keep" for f in feeds[ALARMS].field_names() if f not in ("unit", "room_no", "household")},
            "basis": {"smoke": "vital_interest", "gas": "vital_interest", "fall": "vital_interest"}
            | {"sos": "consent", "heart_rate": "consent"},
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    body = {"consumer": "district", "version": 1, "title": "district (test)", "retention_days": 30}
    body |= {"legal_basis": "test", "feeds": grants}
    (folder / "district.yaml").write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
    return folder


def push_settings(home: Path, broker_url: str, **push: Any) -> Settings:
    """Settings of a private hub under `home` (keys made, control DB migrated) pushing to `broker_url`."""
    target = NgsiLdPush(name="district", broker_url=broker_url, **{"backoff_seconds": 0.0, **push})
    settings = Settings(
        home=home,
        state_dir=Path("var"),
        lake_dir=Path("lake"),
        control_db_url="",
        master_secret=None,
        policies_dir=write_policy(home / "policies"),
        push=PushSettings(ngsi_ld=[target]),
    )
    init_keys(settings)
    migrate(settings.control_url)
    return settings


def air_rows(stations: int, hours: int, day: date = DAY) -> list[dict[str, Any]]:
    """Hourly station means; every station measures noise too (two entities a row)."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return [
        {
            **{"community_id": COMMUNITY, "day": day, "hour_start": start + timedelta(hours=h)},
            **{"device_id": f"ENV{s:04d}", "location": f"spot-{s}", "readings": 60},
            **{"pm25_avg": 20.0 + s % 7, "pm25_max": 30.0, "pm10_avg": 40.0 + h, "pm10_max": 50.0},
            **{"noise_laeq_db": 50.0 + h % 5, "noise_lamax_db": 70.0},
            **{"temperature_avg_c": 12.5, "humidity_avg_pct": 64.0},
        }
        for h in range(hours)
        for s in range(stations)
    ]


def lamp_rows(lamps: int, day: date = DAY) -> list[dict[str, Any]]:
    return [
        {
            **{"community_id": COMMUNITY, "day": day, "asset_type": "streetlight", "device_id": f"SL{i:04d}"},
            **{"cover_type": None, "state": "on", "reports": 96, "battery_pct": None, "brightness_pct": 80},
            **{"last_report_at": START + timedelta(hours=15, minutes=i % 60), "faults_raised": 0, "faults_cleared": 0},
            **{"fault_types": None, "energy_kwh": 1.5, "tilt_deg_max": None, "water_level_cm_max": None},
        }
        for i in range(lamps)
    ]


def publish(settings: Settings, feed_name: str, rows: list[dict[str, Any]], day: date = DAY, version: int = 1) -> int:
    """Publish rows as the district's partition of `feed_name` for `day`, as the publisher would."""
    feed = load_feeds()[feed_name]
    policy = load_policies(settings.policies_dir)["district"]
    granted = policy.published_fields(feed)
    schema = pa.schema([(name, ARROW[feed.field(name).type]) for name in granted])
    table = pa.Table.from_pylist([{name: row[name] for name in granted} for row in rows], schema=schema)
    key = HubKeys.load(settings).active_signing_key
    partition = f"community_id={COMMUNITY}/day={day.isoformat()}"
    return publish_table(settings, key, "district", feed_name, partition, version, table, None, policy.fingerprint)
