"""Consent: households that have not opted in are never published; a withdrawal takes effect
at the next publish and purges the household's rows from the raw vault at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from sqlalchemy import select

from kernel.settings import Settings
from privacy.deidentify import staging_key
from privacy.keys import HubKeys, init_keys
from privacy.policy import Policy
from privacy.pseudonymise import pseudonym
from schemas.contract import Contract
from schemas.feeds import Feed
from tests.conftest import make_settings
from warehouse import vault
from warehouse.audit import verify_chain
from warehouse.consent import consenting_households, record_consent
from warehouse.control import session_scope
from warehouse.migrations import migrate
from warehouse.models import AuditEntry, LoadRecord, Partition
from warehouse.publisher import publish_feed
from warehouse.staging import warehouse

CONTRACT = Contract.model_validate(
    yaml.safe_load(
        """
name: smoke_readings
version: 1
system: 6
title: {zh: 烟感读数, en: Smoke readings}
primary_key: [reading_id]
cursor_field: read_at
event_time: read_at
consent: smoke_gas
fields:
  - {name: reading_id, type: string, nullable: false, privacy: public, description: {zh: 编号, en: id}}
  - {name: household_id, type: string, privacy: direct, identifier: household, description: {zh: 户, en: household}}
  - {name: read_at, type: timestamp, privacy: quasi, description: {zh: 时间, en: time}}
  - {name: smoke_ppm, type: float64, privacy: sensitive, description: {zh: 烟雾, en: smoke}}
"""
    )
)
FEED = Feed.model_validate(
    {
        "name": "safety.smoke_daily",
        "version": 1,
        "title": {"zh": "烟感", "en": "Smoke"},
        "description": {"zh": "测试", "en": "test"},
        "mart": "mart_smoke_daily",
        "sources": ["smoke_readings"],
        "cadence": "daily",
        "partition_by": ["community_id", "day"],
        "order_by": ["household", "day"],
        "consent": "smoke_gas",
        "household_field": "household",
        "fields": [
            {"name": "community_id", "type": "string", "description": {"zh": "小区", "en": "community"}},
            {"name": "day", "type": "date", "description": {"zh": "日", "en": "day"}},
            {"name": "household", "type": "string", "privacy": "direct", "description": {"zh": "户", "en": "hh"}},
            {"name": "alarms", "type": "int64", "privacy": "sensitive", "description": {"zh": "报警", "en": "n"}},
        ],
    }
)
POLICY = Policy.model_validate(
    {
        "consumer": "district",
        "version": 1,
        "title": "t",
        "legal_basis": "t",
        "retention_days": 30,
        "feeds": {FEED.name: {"fields": {"day": "keep", "household": "pseudonymise", "alarms": "keep"}}},
    }
)
HOUSEHOLDS = ["H01101", "H01102", "H01201", "H02101"]


def settings_for(tmp_path: Path) -> Settings:
    settings = make_settings(tmp_path)
    init_keys(settings)
    migrate(settings.control_url)
    return settings


def tokens(settings: Settings) -> dict[str, str]:
    key = staging_key(HubKeys.load(settings), "household")
    return {h: pseudonym(key, h) for h in HOUSEHOLDS}


def test_consent_is_recorded_and_stale_updates_are_ignored(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    record_consent(settings, "tok-a", "smoke_gas", True, "platform", t0, contracts=[])
    record_consent(settings, "tok-b", "smoke_gas", True, "platform", t0, contracts=[])
    record_consent(settings, "tok-a", "elderly_care", True, "platform", t0, contracts=[])
    assert consenting_households(settings, "smoke_gas") == {"tok-a", "tok-b"}
    change = record_consent(settings, "tok-b", "smoke_gas", False, "platform", t0 + timedelta(days=1), contracts=[])
    assert change.withdrawn and consenting_households(settings, "smoke_gas") == {"tok-a"}
    stale = record_consent(settings, "tok-b", "smoke_gas", True, "platform", t0, contracts=[])  # a replay
    assert not stale.changed and consenting_households(settings, "smoke_gas") == {"tok-a"}
    with session_scope(settings.control_url) as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "consent")).all()
        assert [e.outcome for e in entries] == ["granted", "granted", "granted", "withdrawn"]
        assert not any("tok-" in (e.detail or "") for e in entries)  # never the household
        assert verify_chain(s) == []


def test_a_withdrawal_purges_the_households_rows_from_the_raw_vault(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    keys = HubKeys.load(settings)
    raw = pa.table(
        {
            "reading_id": [f"r{i}" for i in range(8)],
            "household_id": [HOUSEHOLDS[i % 4] for i in range(8)],
            "read_at": ["2026-11-20T01:00:00Z"] * 8,
            "smoke_ppm": ["0.1"] * 8,
        }
    )
    batch = "smoke_readings/music-square/20261120T000000Z-20261121T000000Z"
    landed = vault.land(settings.vault_dir, keys, batch, raw, timedelta(days=30))
    other = vault.land(settings.vault_dir, keys, "vehicle_passes/other", raw, timedelta(days=30))
    with session_scope(settings.control_url) as s:
        now = datetime.now(UTC)
        for stream, object_id in (("smoke_readings", batch), ("vehicle_passes", other.object_id)):
            s.add(
                LoadRecord(
                    batch_id=object_id, stream=stream, community_id="music-square", window_start=now,
                    window_end=now, status="loaded", vault_object=object_id,
                )
            )  # fmt: skip
    token = tokens(settings)["H01102"]
    record_consent(settings, token, "smoke_gas", True, "platform", contracts=[CONTRACT])
    change = record_consent(settings, token, "smoke_gas", False, "platform", contracts=[CONTRACT])
    assert change.purged_objects == [batch]
    left = vault.read(settings.vault_dir, keys, batch)
    assert left.num_rows == 6 and "H01102" not in left.column("household_id").to_pylist()
    assert vault.header(settings.vault_dir, batch).expires_at == landed.expires_at  # type: ignore[union-attr]
    assert vault.read(settings.vault_dir, keys, other.object_id).num_rows == 8  # another function's stream


def test_only_consenting_households_are_published_and_a_withdrawal_shows_at_the_next_publish(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path)
    keys = HubKeys.load(settings)
    by_household = tokens(settings)
    mart = pa.table(
        {
            "community_id": ["music-square"] * 4,
            "day": pa.array([datetime(2026, 11, 20).date()] * 4, pa.date32()),
            "household": [by_household[h] for h in HOUSEHOLDS],
            "alarms": [1, 0, 2, 0],
        }
    )
    with warehouse(settings.warehouse_file) as con:
        con.register("m", mart)
        con.execute("CREATE TABLE mart_smoke_daily AS SELECT * FROM m")
        for h in HOUSEHOLDS[:3]:
            record_consent(settings, by_household[h], "smoke_gas", True, "platform", contracts=[])
        first = publish_feed(con, settings, keys, FEED, {"district": POLICY})
        record_consent(settings, by_household["H01102"], "smoke_gas", False, "platform", contracts=[])
        second = publish_feed(con, settings, keys, FEED, {"district": POLICY})
    assert [(p.version, p.rows) for p in first + second] == [(1, 3), (2, 2)]
    with session_scope(settings.control_url) as s:
        latest = s.scalars(select(Partition).order_by(Partition.version.desc())).first()
        assert latest is not None
        rows = pq.read_table(settings.lake_path / latest.path).to_pylist()
    assert len(rows) == 2 and all(set(r) == {"day", "household", "alarms"} for r in rows)
    assert not {r["household"] for r in rows} & set(by_household.values())  # the consumer's own pseudonyms


def test_a_feed_that_no_policy_grants_is_never_published(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with warehouse(settings.warehouse_file) as con:
        con.execute(
            "CREATE TABLE mart_smoke_daily AS SELECT 'music-square' AS community_id, DATE '2026-11-20' AS day, "
            "'x' AS household, 1 AS alarms"
        )
        ungranted = POLICY.model_copy(update={"feeds": {}})
        assert publish_feed(con, settings, HubKeys.load(settings), FEED, {"district": ungranted}) == []
    assert not settings.lake_path.exists() or not any(settings.lake_path.rglob("*.parquet"))
