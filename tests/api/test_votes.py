"""Ballot inclusion proofs through the real API on loopback: every counted ballot's receipt
gets a signed proof that verifies offline against the root its consumer was published, an
altered ballot does not; a consumer not granted governance.votes, and a receipt that is
unknown, malformed or of a replaced ballot, get the one plain 404; the audit log names the
parameter, never the receipt. Then the same from the simulated platform, end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import pipeline
from api.app import create_app
from api.client import HubRefused
from connectors.sql import SqlSource
from neuron.cli import app as cli
from privacy.keys import HubKeys, init_keys
from simulator.community import Community
from simulator.platform import PlatformSimulator
from tests.api.hub import ROOMY, LiveHub, ServerThread, new_identity
from tests.conftest import make_settings
from tests.connectors.hub_sources import hub_settings
from tests.leaks import find_leaks, texts_of_lake, texts_of_warehouse
from tests.warehouse.marts.test_service_feeds import BALLOTS, COUNTED, RECEIPTS, ballot, build_fixture, stage
from warehouse.control import session_scope
from warehouse.marts import build_marts
from warehouse.merkle import format_receipt, normalise_receipt, receipt_commitment, verify_ballot
from warehouse.migrations import migrate
from warehouse.models import AuditEntry
from warehouse.staging import warehouse

VOTES = "governance.votes"
CHOICES = ("agree", "oppose", "abstain")


@pytest.fixture(scope="module")
def votes_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    """A hub with the fixture's votes published under the real policies, and its API served."""
    settings = make_settings(tmp_path_factory.mktemp("votes"))
    init_keys(settings)
    migrate(settings.control_url)
    with warehouse(settings.warehouse_file) as con:
        build_fixture(con)
    assert pipeline.publish(settings, feeds=[VOTES])
    identities = {name: new_identity(settings, name) for name in ("district", "public_security", "open_data")}
    app = create_app(settings, options=ROOMY)
    with ServerThread(app) as server:
        hub = LiveHub(settings, app, server.url, identities, [], HubKeys.load(settings).active_signing_key)
        hub.jwks = HubKeys.load(settings).jwks()  # pinned, as the operator hands it over
        yield hub


def published_roots(hub: LiveHub, consumer: str) -> dict[str, str]:
    with hub.client(consumer) as client:
        rows, _ = client.records_ndjson(VOTES)
    return {row["motion_id"]: row["merkle_root"] for row in rows}


@pytest.mark.parametrize("consumer", ["district", "open_data"])
def test_every_counted_ballot_proves_offline_and_an_altered_one_does_not(votes_hub: LiveHub, consumer: str) -> None:
    roots = published_roots(votes_hub, consumer)
    with votes_hub.client(consumer) as client:
        for key, motion, choice, centi in COUNTED:
            proof = client.ballot_proof(RECEIPTS[key])  # the client checked the hub's signature
            area = centi / 100
            assert (proof["feed"], proof["motion_id"], proof["merkle_root"]) == (VOTES, motion, roots[motion])
            assert verify_ballot(proof, RECEIPTS[key], choice, area, root=roots[motion])
            for other in set(CHOICES) - {choice}:
                assert not verify_ballot(proof, RECEIPTS[key], other, area, root=roots[motion])
            assert not verify_ballot(proof, RECEIPTS[key], choice, area + 1, root=roots[motion])
            if proof["path"]:
                forged = [{**proof["path"][0], "hash": "0" * 64}, *proof["path"][1:]]
                assert not verify_ballot({**proof, "path": forged}, RECEIPTS[key], choice, area)


def test_the_owner_checks_with_the_command_line(votes_hub: LiveHub, tmp_path: Path) -> None:
    key, _, choice, centi = COUNTED[1]
    with votes_hub.client("open_data") as client:
        proof = client.ballot_proof(RECEIPTS[key].upper().replace("-", " "))  # as typed by hand
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof), encoding="utf-8")
    args = ["verify-ballot", str(path), "--receipt", RECEIPTS[key], "--area", str(centi / 100)]
    ok = CliRunner().invoke(cli, [*args, "--choice", choice, "--root", proof["merkle_root"]])
    assert ok.exit_code == 0 and "verified" in ok.output
    wrong = CliRunner().invoke(cli, [*args, "--choice", "agree"])
    assert wrong.exit_code == 1 and "NOT VERIFIED" in wrong.output


def refusal(hub: LiveHub, consumer: str, receipt: str, feed: str = VOTES) -> tuple[int, object]:
    with hub.client(consumer) as client:
        try:
            client._get(f"/v1/feeds/{feed}/proof", {"receipt": receipt})
        except HubRefused as exc:
            return exc.status_code, exc.detail
    raise AssertionError("served")


def test_unknown_malformed_and_replaced_receipts_get_the_plain_404(votes_hub: LiveHub) -> None:
    unknown = format_receipt("ab" * 16)
    for receipt in [RECEIPTS["a_old"], unknown, "not-a-receipt", "0" * 31]:
        assert refusal(votes_hub, "district", receipt) == (404, "not found")


def test_a_consumer_without_the_feed_gets_the_plain_404(votes_hub: LiveHub) -> None:
    assert refusal(votes_hub, "public_security", RECEIPTS["a"]) == (404, "not found")
    # Granted another feed: proofs exist only for governance.votes.
    assert refusal(votes_hub, "district", RECEIPTS["a"], "traffic.vehicle_flow_hourly") == (404, "not found")
    assert refusal(votes_hub, "district", RECEIPTS["a"], "no.such_feed") == (404, "not found")


def test_the_audit_log_names_the_parameter_never_the_receipt(votes_hub: LiveHub) -> None:
    with votes_hub.client("district") as client:
        client.ballot_proof(RECEIPTS["b"])
    with session_scope(votes_hub.settings.control_url) as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.feed == VOTES)).all()
        texts = [(f"audit {e.seq}", f"{e.path} {e.detail}") for e in entries]
        proofs = [e for e in entries if e.path == f"/v1/feeds/{VOTES}/proof?receipt"]
        assert any(e.status_code == 200 and e.actor == "district" and e.rows == 1 for e in proofs)
    receipts = [*RECEIPTS.values(), *(normalise_receipt(r) for r in RECEIPTS.values())]
    assert texts and find_leaks(receipts, texts) == []


def test_a_late_paper_ballot_makes_one_new_version_with_its_own_root(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "hub")
    init_keys(settings)
    migrate(settings.control_url)
    with warehouse(settings.warehouse_file) as con:
        build_fixture(con)
    first = pipeline.publish(settings, feeds=[VOTES])
    november = "community_id=music-square/month=2026-11-01"
    assert {(p.consumer, p.version) for p in first if p.partition_key == november} == {
        ("district", 1),
        ("open_data", 1),
    }
    # Typed in on the 20th, cast on paper on the 5th: November's tally changes, December's does not.
    late = format_receipt("5e" * 16)
    row = ballot("B9", "e", "h07", "M1", "oppose", "b", "2026-11-05T01:00:00", "2026-11-20T10:00:00", "vote/late")
    with warehouse(settings.warehouse_file) as con:
        stage(con, "platform_votes", [*BALLOTS, {**row, "receipt_commitment": receipt_commitment(late)}])
        build_marts(con)
    again = pipeline.publish(settings, feeds=[VOTES])
    assert sorted((p.consumer, p.partition_key, p.version) for p in again) == [
        ("district", november, 2),
        ("open_data", november, 2),
    ]
    identities = {"open_data": new_identity(settings, "open_data")}
    app = create_app(settings, options=ROOMY)
    with ServerThread(app) as server:
        hub = LiveHub(settings, app, server.url, identities, [], HubKeys.load(settings).active_signing_key)
        hub.jwks = HubKeys.load(settings).jwks()  # pinned, as the operator hands it over
        roots = published_roots(hub, "open_data")
        with hub.client("open_data") as client:
            for receipt, choice, area in [(late, "oppose", 100.0), (RECEIPTS["a"], "agree", 85.25)]:
                proof = client.ballot_proof(receipt)
                assert proof["partition"]["version"] == 2 and proof["leaf_count"] == 4
                assert verify_ballot(proof, receipt, choice, area, root=roots["M1"])


@pytest.mark.slow
def test_the_simulated_platform_s_receipts_prove_end_to_end(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'platform.db'}"
    sim = PlatformSimulator(Community(households_count=60, buildings=2))
    sim.write_days(url, 2)
    settings = hub_settings(tmp_path / "hub", platform=SqlSource(url=url, batch_size=500))
    for stream, day in [("platform_households", 0), ("platform_votes", 0), ("platform_votes", 1)]:
        pipeline.run_window(settings, stream, *sim.window(sim.first_day.replace(day=1 + day)))
    pipeline.publish(settings, feeds=[VOTES])  # the whole month: see docs/votes.md, "Publishing"
    with duckdb.connect(str(settings.warehouse_file), read_only=True) as con:
        counted = {r[0] for r in con.execute("SELECT ballot_id FROM stg_platform_votes").fetchall()}
    ballots = sim.tables["votes"]
    receipts = sim.ballot_receipts()
    assert len(counted) >= 5 and set(receipts) > counted  # some ballots quarantined (faults)
    identities = {"open_data": new_identity(settings, "open_data")}
    app = create_app(settings, options=ROOMY)
    # A double submission carries the same receipt as the ballot kept.
    kept = {receipts[b] for b in counted}
    verified, refused_count = 0, 0
    with ServerThread(app) as server:
        hub = LiveHub(settings, app, server.url, identities, [], HubKeys.load(settings).active_signing_key)
        hub.jwks = HubKeys.load(settings).jwks()  # pinned, as the operator hands it over
        with hub.client("open_data") as client:
            for ballot_id in sorted(receipts):
                ballot = ballots[ballot_id]
                if ballot_id not in counted:
                    if receipts[ballot_id] in kept:
                        continue
                    with pytest.raises(HubRefused) as refused:
                        client.ballot_proof(receipts[ballot_id])
                    assert refused.value.status_code == 404
                    refused_count += 1
                    continue
                proof = client.ballot_proof(receipts[ballot_id])
                assert verify_ballot(proof, receipts[ballot_id], ballot["choice"], ballot["area_m2"])
                verified += 1
    assert verified == len(counted) and refused_count > 0  # a quarantined (malformed) ballot has no proof
    # The receipts themselves never reached the hub: not in staging, marts, lake or audit log.
    digits = [normalise_receipt(r) for r in receipts.values()]
    texts = [*texts_of_warehouse(settings.warehouse_file), *texts_of_lake(settings.lake_path)]
    with session_scope(settings.control_url) as session:
        texts += [(f"audit {e.seq}", f"{e.path} {e.detail}") for e in session.scalars(select(AuditEntry))]
    assert find_leaks([*receipts.values(), *digits], texts) == []


def test_the_standalone_kit_fetches_and_checks_the_same_proofs(votes_hub: LiveHub) -> None:
    from neuron_consumer.ballot import verify_ballot as kit_verify
    from neuron_consumer.client import Hub
    from neuron_consumer.keys import thumbprint

    roots = published_roots(votes_hub, "district")
    identity = votes_hub.identities["district"]
    pins = {thumbprint(k) for k in votes_hub.jwks["keys"]}
    with Hub(votes_hub.url, identity.key_id, identity.private_key, pins) as hub:
        for key, motion, choice, centi in COUNTED:
            proof = hub.ballot_proof(RECEIPTS[key])
            assert kit_verify(proof, RECEIPTS[key], choice, centi / 100, root=roots[motion])
            assert not kit_verify(proof, RECEIPTS[key], choice, centi / 100 + 1, root=roots[motion])
