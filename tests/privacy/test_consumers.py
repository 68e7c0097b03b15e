"""What each of the three consumers receives, end to end: simulated vendor → pipeline →
policies → lake → export API (real uvicorn). No identifier the simulator generated reaches
a consumer unless its policy entitles the field — and then only sealed to its own key."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import select

import pipeline
from api.app import create_app
from api.client import HubClient
from api.consumers import register_consumer
from kernel.errors import PublishBlocked
from kernel.settings import Settings
from privacy.keys import HubKeys
from privacy.seal import open_sealed
from simulator.community import Community
from simulator.parking import ParkingSimulator
from tests.api.hub import ServerThread, public_pem
from tests.leaks import find_leaks, jws_payloads, texts_of_consumer_lake
from warehouse.control import session_scope
from warehouse.models import AuditEntry, Partition
from warehouse.recipients import register_encryption_key

FLOW, PASSES = "traffic.vehicle_flow_hourly", "traffic.vehicle_passes"
DAYS = (date(2026, 11, 20), date(2026, 11, 21))
CONSUMERS = ("district", "open_data", "public_security")


def x25519_pem(private: X25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def served_to(url: str, key_id: str, private: Ed25519PrivateKey, jwks: dict[str, Any]) -> list[str]:
    """Every response body a consumer gets: catalog, each granted feed's detail and all its records."""
    pages: list[str] = []
    with HubClient(url, key_id, private, jwks) as client:
        catalog = client.catalog()
        pages.append(json.dumps(catalog, ensure_ascii=False))
        for entry in catalog:
            pages.append(json.dumps(client.feed(entry["name"]), ensure_ascii=False))
            cursor = None
            while True:
                rows, next_cursor = client.records_ndjson(entry["name"], cursor=cursor, limit=5000)
                pages.append(json.dumps(rows, ensure_ascii=False, default=str))
                if not rows or next_cursor == cursor:
                    break
                cursor = next_cursor
    return pages


def lake_rows(settings: Settings, consumer: str, feed: str) -> list[dict[str, Any]]:
    with session_scope(settings.control_url) as s:
        paths = s.scalars(select(Partition.path).where(Partition.consumer == consumer, Partition.feed == feed)).all()
    return [row for p in paths for row in pq.read_table(settings.lake_path / p).to_pylist()]


@pytest.fixture
def police_key() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


@pytest.fixture
def published(hub: Settings, police_key: X25519PrivateKey) -> dict[str, tuple[str, Ed25519PrivateKey]]:
    """The three consumers registered (the police with its encryption key), two days run."""
    identities = {}
    for name in CONSUMERS:
        private = Ed25519PrivateKey.generate()
        identities[name] = (register_consumer(hub, name, public_pem(private)), private)
    register_encryption_key(hub, "public_security", x25519_pem(police_key))
    for day in DAYS:
        pipeline.run_window(hub, "vehicle_passes", *pipeline.local_day_window(hub, day))
    return identities


def test_no_consumer_receives_an_identifier_it_is_not_entitled_to(
    hub: Settings, simulator: ParkingSimulator, published: dict[str, tuple[str, Ed25519PrivateKey]]
) -> None:
    plates = simulator.all_plates()
    truth = Community().ground_truth()
    identifiers = [*plates, *(v for values in truth.values() for v in values)]
    assert len(plates) > 500 and len(identifiers) > 5000
    with ServerThread(create_app(hub)) as server:
        for consumer in CONSUMERS:
            key_id, private = published[consumer]
            pages = served_to(server.url, key_id, private, HubKeys.load(hub).jwks())
            texts = [*texts_of_consumer_lake(hub.lake_path, consumer), *((f"api:{consumer}", p) for p in pages)]
            texts += [(f"api:{consumer} (signed)", t) for p in pages for t in jws_payloads(p)]
            assert len(texts) > 4
            if consumer == "public_security":
                assert sum(p.count('"plate_no": "nhs2.') for p in pages) > 1000  # served, sealed
            assert find_leaks(identifiers, texts) == [], consumer


def test_only_public_security_gets_passes_and_its_plates_open_only_with_its_key(
    hub: Settings, simulator: ParkingSimulator, published: dict[str, Any], police_key: X25519PrivateKey
) -> None:
    assert lake_rows(hub, "district", PASSES) == lake_rows(hub, "open_data", PASSES) == []
    passes = lake_rows(hub, "public_security", PASSES)
    assert len(passes) > 1000
    assert set(passes[0]) == {
        "community_id",
        "day",
        "pass_time",
        "gate_code",
        "direction",
        "vehicle_type",
        "new_energy",
        "plate_no",
    }
    opened = {
        open_sealed(p["plate_no"], police_key, "plate_no", consumer="public_security", feed="traffic.vehicle_passes")
        for p in passes
    }
    assert opened <= simulator.all_plates() and len(opened) > 100
    assert all(p["plate_no"].startswith("nhs2.public_security-enc-") for p in passes)
    # Sealing is deterministic: re-running a window gives the same bytes, so no new version.
    assert pipeline.run_window(hub, "vehicle_passes", *pipeline.local_day_window(hub, DAYS[1]))["published"] == 0


def test_open_data_counts_are_k_anonymous_and_suppressed_cells_cannot_be_recomputed(
    hub: Settings, published: dict[str, Any]
) -> None:
    flow = lake_rows(hub, "open_data", FLOW)
    assert flow and "charges_fen" not in flow[0]
    counts = ["entries", "exits", "resident_entries", "visitor_entries", "new_energy_entries"]
    shown = [row[c] for row in flow for c in counts]
    assert None in shown and any(v is not None and v >= 5 for v in shown)  # suppression, and data
    assert not [v for v in shown if v is not None and 0 < v < 5]
    for row in flow:
        parts = [row["entries"], row["resident_entries"], row["visitor_entries"]]
        assert sum(v is None for v in parts) != 1  # entries = resident + visitor can't give one back
        if row["entries"] is not None and None in parts:
            assert row["entries"] - (row["resident_entries"] or 0) - (row["visitor_entries"] or 0) >= 5
    district = lake_rows(hub, "district", FLOW)
    assert any(0 < row["visitor_entries"] < 5 for row in district)  # district's policy has no k


def test_every_publication_names_its_policy_in_the_manifest_and_the_audit_log(
    hub: Settings, published: dict[str, Any]
) -> None:
    from privacy.policy import load_policies

    fingerprints = {name: p.fingerprint for name, p in load_policies(hub.policies_dir).items()}
    with session_scope(hub.control_url) as s:
        partitions = s.scalars(select(Partition)).all()
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "publish")).all()
        for p in partitions:
            manifest = json.loads(jws_payloads(p.manifest_jws)[0])
            assert manifest["policy_fingerprint"] == fingerprints[p.consumer] == p.policy_fingerprint
        assert len([a for a in audit if a.outcome == "published"]) == len(partitions)
        assert all(a.policy_fingerprint in fingerprints.values() for a in audit)


def test_without_an_encryption_key_passes_are_withheld_and_audited(hub: Settings) -> None:
    pipeline.run_window(hub, "vehicle_passes", *pipeline.local_day_window(hub, DAYS[0]))
    assert lake_rows(hub, "public_security", PASSES) == []
    assert lake_rows(hub, "public_security", FLOW)  # what needs no key still flows
    with session_scope(hub.control_url) as s:
        withheld = s.scalars(select(AuditEntry).where(AuditEntry.outcome == "withheld")).all()
    assert withheld and all(w.feed == PASSES and "encryption-key" in (w.detail or "") for w in withheld)


def test_a_microdata_publish_below_k_is_blocked_with_a_clear_report(hub: Settings, tmp_path: Path) -> None:
    import shutil

    import yaml

    folder = tmp_path / "policies"
    shutil.copytree(hub.policies_dir, folder)
    police = yaml.safe_load((folder / "public_security.yaml").read_text(encoding="utf-8"))
    police["feeds"][PASSES] = {"k": 5, "fields": {**police["feeds"][PASSES]["fields"], "plate_no": "pseudonymise"}}
    (folder / "public_security.yaml").write_text(yaml.safe_dump(police, allow_unicode=True), encoding="utf-8")
    settings = hub.model_copy(update={"policies_dir": folder})
    with pytest.raises(PublishBlocked) as blocked:
        pipeline.run_window(settings, "vehicle_passes", *pipeline.local_day_window(settings, DAYS[0]))
    report = str(blocked.value)
    assert "traffic.vehicle_passes for public_security" in report and "smaller than k=5" in report
    assert "pass_time, vehicle_type, new_energy" in report
    assert lake_rows(settings, "public_security", PASSES) == []
    assert lake_rows(settings, "open_data", FLOW)  # the rest was published
