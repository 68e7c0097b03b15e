"""`neuron dictionary --feeds` and the catalog: each feed's fields as each consumer receives them."""

from __future__ import annotations

from typer.testing import CliRunner

from kernel.settings import Settings
from neuron.cli import app
from privacy.feed_dictionary import received_fields, render_feeds
from privacy.policy import load_policies
from schemas.feeds import load_feeds

FEEDS = load_feeds()
POLICIES = load_policies(Settings().policies_dir)


def test_each_consumer_gets_exactly_its_policys_fields_with_meaning_type_treatment_and_basis() -> None:
    for policy in POLICIES.values():
        for name in policy.feeds:
            feed = FEEDS[name]
            fields = received_fields(feed, policy)
            assert [f["name"] for f in fields] == [
                f.name for f in feed.fields if f.name in policy.published_fields(feed)
            ]
            for f in fields:
                assert f["meaning"]["zh"] and f["meaning"]["en"] and f["legal_basis"] == policy.legal_basis
                assert f["treatment_text"]["zh"] and f["treatment_text"]["en"]
                assert f["treatment"]["op"] == policy.operator(name, f["name"]).name


def test_the_plate_public_security_receives_is_explained_as_sealed_to_it() -> None:
    police = {f["name"]: f for f in received_fields(FEEDS["traffic.vehicle_passes"], POLICIES["public_security"])}
    plate = police["plate_no"]
    assert plate["treatment"] == {"op": "seal_to"} and plate["parquet_type"] == "string"
    assert "密封给public_security" in plate["treatment_text"]["zh"] and "HPKE" in plate["treatment_text"]["en"]


def test_the_cli_prints_every_consumer_and_feed_it_is_granted() -> None:
    result = CliRunner().invoke(app, ["dictionary", "--feeds"])
    assert result.exit_code == 0, result.output
    for policy in POLICIES.values():
        assert f"## {policy.consumer} — " in result.output
        for name in policy.feeds:
            assert f"### `{name}` — {FEEDS[name].title.zh}" in result.output
    assert render_feeds(FEEDS, POLICIES) in result.output
