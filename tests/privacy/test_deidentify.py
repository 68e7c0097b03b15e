"""De-identification: tokens for direct identifiers, scrubbed free text, and the per-consumer
columns that need raw values — then published: the community's identifiers in free text
and phone fields reach no consumer except as its policy entitles."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from privacy.deidentify import deidentify, staging_derivations
from privacy.keys import HubKeys, init_keys
from privacy.policy import Policy, check_policy
from privacy.seal import Recipient, open_sealed
from schemas.contract import Contract
from schemas.feeds import Feed
from simulator.community import Community
from simulator.free_text import labelled_texts
from tests.conftest import make_settings
from tests.leaks import find_leaks, texts_of_consumer_lake
from warehouse.migrations import migrate
from warehouse.publisher import publish_feed
from warehouse.staging import warehouse

CONTRACT = Contract.model_validate(
    yaml.safe_load(
        """
name: repair_requests
version: 1
system: 9
title: {zh: 报修, en: Repairs}
primary_key: [request_id]
cursor_field: day
event_time: day
fields:
  - {name: request_id, type: string, nullable: false, privacy: public, description: {zh: 编号, en: id}}
  - {name: day, type: timestamp, privacy: quasi, description: {zh: 日, en: day}}
  - {name: phone, type: string, privacy: direct, description: {zh: 电话, en: phone}}
  - {name: description, type: string, privacy: free_text, description: {zh: 描述, en: text}}
"""
    )
)
FIELD = {"zh": "字段", "en": "field"}
FEED = Feed.model_validate(
    {
        "name": "services.repairs_test",
        "version": 1,
        "title": FIELD,
        "description": FIELD,
        "mart": "mart_repairs",
        "sources": ["repair_requests"],
        "cadence": "daily",
        "partition_by": ["community_id", "day"],
        "order_by": ["request_id"],
        "fields": [
            {"name": "community_id", "type": "string", "description": FIELD},
            {"name": "day", "type": "date", "description": FIELD},
            {"name": "request_id", "type": "string", "description": FIELD},
            {"name": "phone", "type": "string", "privacy": "direct", "description": FIELD},
            {"name": "description", "type": "string", "privacy": "free_text", "description": FIELD},
        ],
    }
)


def policy(consumer: str, fields: dict[str, object]) -> Policy:
    body = {"consumer": consumer, "version": 1, "title": consumer, "legal_basis": "test", "retention_days": 30}
    made = Policy.model_validate({**body, "feeds": {FEED.name: {"fields": fields}} if fields else {}})
    check_policy(made, {FEED.name: FEED}, {})
    return made


POLICIES = {
    "district": policy(
        "district",
        {
            "day": "keep",
            "request_id": "keep",
            "description": "keep",
            "phone": {"op": "mask", "keep_start": 3, "keep_end": 4},
        },
    ),
    "public_security": policy("public_security", {"day": "keep", "request_id": "keep", "phone": "seal_to"}),
    "open_data": policy("open_data", {}),
}


def test_free_text_and_phones_reach_each_consumer_only_as_its_policy_says(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    init_keys(settings)
    migrate(settings.control_url)
    keys = HubKeys.load(settings)
    police = X25519PrivateKey.generate()
    recipients = {"public_security": Recipient("public_security", "ps-enc-1", police.public_key())}
    community = Community()
    residents = community.residents
    texts = labelled_texts(400, seed=3, community=community)
    raw = pa.table(
        {
            "request_id": [f"R{i:04d}" for i in range(len(texts))],
            "day": pa.array([date(2026, 11, 20)] * len(texts), pa.date32()).cast(pa.timestamp("us", tz="UTC")),
            "phone": [residents[i % len(residents)].phone for i in range(len(texts))],
            "description": [t.text for t in texts],
        }
    )
    plan = staging_derivations(CONTRACT, {FEED.name: FEED}, POLICIES, recipients)
    assert [d.column for d in plan] == ["phone_masked_district", "phone_sealed_public_security"]
    staged = deidentify(CONTRACT, raw, keys, plan, {r.name for r in residents})
    assert "phone" not in staged.column_names and "phone_token" in staged.column_names
    assert (
        staged.column("phone_masked_district")[0].as_py()
        == raw["phone"][0].as_py()[:3] + "****" + raw["phone"][0].as_py()[-4:]
    )
    mart = staged.rename_columns(["phone" if n == "phone_token" else n for n in staged.column_names])
    mart = mart.append_column("community_id", pa.array(["music-square"] * mart.num_rows))
    with warehouse(settings.warehouse_file) as con:
        con.register("m", mart)
        con.execute("CREATE TABLE mart_repairs AS SELECT * REPLACE (CAST(day AS DATE) AS day) FROM m")
        published = publish_feed(con, settings, keys, FEED, POLICIES)
    assert sorted({p.consumer for p in published}) == ["district", "public_security"]

    truth = community.ground_truth()
    identifiers = [v for values in truth.values() for v in values]
    for consumer in POLICIES:
        assert find_leaks(identifiers, texts_of_consumer_lake(settings.lake_path, consumer)) == [], consumer
    district = pq.read_table(next((settings.lake_path / "district").rglob("*.parquet"))).to_pylist()
    assert any("[NAME]" in r["description"] for r in district) and all("****" in r["phone"] for r in district)
    police_rows = pq.read_table(next((settings.lake_path / "public_security").rglob("*.parquet"))).to_pylist()
    assert {
        open_sealed(r["phone"], police, "phone", consumer="public_security", feed=FEED.name) for r in police_rows
    } <= set(truth["phones"])
    assert "description" not in police_rows[0]


def test_a_value_sealed_for_two_feeds_is_refused_with_the_field_and_feeds_named() -> None:
    # A sealed value is bound to one feed (HPKE info), and one staging column serves a consumer.
    other = FEED.model_copy(update={"name": "services.repairs_other"})
    grants = {name: {"fields": {"request_id": "keep", "phone": "seal_to"}} for name in (FEED.name, other.name)}
    body = {"consumer": "public_security", "version": 1, "title": "ps", "legal_basis": "test", "retention_days": 30}
    both = Policy.model_validate({**body, "feeds": grants})
    recipient = Recipient("public_security", "ps-1", X25519PrivateKey.generate().public_key())
    with pytest.raises(ValueError, match="seals field 'phone' in feeds"):
        staging_derivations(
            CONTRACT, {FEED.name: FEED, other.name: other}, {"public_security": both}, {"public_security": recipient}
        )
