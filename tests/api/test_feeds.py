"""The catalog, feed details, health and keys, as consumers see them over HTTP."""

from __future__ import annotations

import pytest

from api.client import HubRefused, verify_response
from privacy.policy import load_policies
from schemas.feeds import load_feeds
from tests.api.hub import LiveHub, send
from tests.api.lake import FEED


def test_healthz_and_jwks_need_no_signature_but_are_signed(live_hub: LiveHub) -> None:
    health = send(live_hub.signed("/healthz", None))
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "control_db": "reachable"}
    verify_response(health, live_hub.jwks)
    jwks = send(live_hub.signed("/.well-known/jwks.json", None))
    assert jwks.status_code == 200
    assert [k["kty"] for k in jwks.json()["keys"]] == ["OKP"]
    verify_response(jwks, jwks.json())


def test_catalog_lists_only_granted_feeds(live_hub: LiveHub) -> None:
    with live_hub.client("district") as client:
        (entry,) = client.catalog()
    assert entry["name"] == FEED
    assert entry["title"]["zh"] == "车辆进出流量（小时）"
    assert entry["partitions"] == 3  # three days, whatever the versions
    assert entry["watermark"].startswith("2026-11-22T04:00:00")
    with live_hub.client("open_data") as client:
        assert client.catalog() == []  # its policy grants nothing yet


def test_feed_detail_shows_what_the_caller_receives(live_hub: LiveHub) -> None:
    with live_hub.client("public_security") as client:
        detail = client.feed(FEED)
    policy = load_policies(live_hub.settings.policies_dir)["public_security"]
    assert [f["name"] for f in detail["fields"]] == policy.published_fields(load_feeds()[FEED])
    assert "charges_fen" not in {f["name"] for f in detail["fields"]}
    assert {f["treatment"]["op"] for f in detail["fields"]} == {"keep"}
    entries = next(f for f in detail["fields"] if f["name"] == "entries")
    assert entries["unit"] == "vehicles" and entries["description"]["en"] == "Vehicles entering"
    assert detail["policy"] == {
        "name": "public_security",
        "title": policy.title,
        "version": policy.version,
        "fingerprint": policy.fingerprint,
        "retention_days": policy.retention_days,
    }
    assert detail["legal_basis"] == policy.legal_basis
    assert detail["partition_by"] == ["community_id", "day"]
    assert detail["watermark"].startswith("2026-11-21T03:00:00")


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/feeds/{FEED}",  # exists, not granted to open_data
        "/v1/feeds/no.such_feed",  # does not exist
        f"/v1/feeds/{FEED}/records",
        "/v1/feeds/no.such_feed/records",
        "/v1/nothing-here",  # no such route
    ],
)
def test_not_found_reads_the_same_for_missing_and_ungranted(live_hub: LiveHub, path: str) -> None:
    response = send(live_hub.signed(path, live_hub.identities["open_data"]))
    verify_response(response, live_hub.jwks)
    assert (response.status_code, response.json()) == (404, {"detail": "not found"})
    assert "neuron-next-cursor" not in {h.lower() for h in response.headers}


def test_client_raises_hub_refused_on_a_signed_404(live_hub: LiveHub) -> None:
    with live_hub.client("open_data") as client, pytest.raises(HubRefused) as refused:
        client.feed(FEED)
    assert refused.value.status_code == 404


@pytest.mark.parametrize("limit", ["0", "51", "many"])
def test_limit_out_of_range_is_422_without_echoing_it(live_hub: LiveHub, limit: str) -> None:
    request = live_hub.signed(f"/v1/feeds/{FEED}/records", live_hub.identities["district"], {"limit": limit})
    response = send(request)
    verify_response(response, live_hub.jwks)
    assert response.status_code == 422
    assert limit not in response.text.replace("50", "")


def test_invalid_cursor_is_422(live_hub: LiveHub) -> None:
    params = {"cursor": "not-a-cursor"}
    response = send(live_hub.signed(f"/v1/feeds/{FEED}/records", live_hub.identities["district"], params))
    verify_response(response, live_hub.jwks)
    assert (response.status_code, response.json()) == (422, {"detail": "invalid cursor"})


def test_response_to_an_unsignable_signature_header_is_still_signed(live_hub: LiveHub) -> None:
    request = live_hub.signed("/healthz", None)
    request.headers["Signature"] = "neuron=:é:"  # not ASCII: cannot enter a signature base
    response = send(request)
    assert response.status_code == 200
    assert '"signature";req' not in response.headers["Signature-Input"]
    del response.request.headers["Signature"]
    verify_response(response, live_hub.jwks)
