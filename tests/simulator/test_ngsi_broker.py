"""The NGSI-LD peer answers as the spec (ETSI GS CIM 009 V1.8.1) and the brokers' issues say,
checked with bare HTTP requests, not with the hub's client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from simulator.ngsi_broker import BrokerConfig, RunningBroker, start_broker

CTX = "https://smartdatamodels.org/context.jsonld"
LINK = f'<{CTX}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
LD = {"Content-Type": "application/ld+json"}
JSON = {"Content-Type": "application/json", "Link": LINK}


def lamp(n: int, **attrs: Any) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Streetlight:t:{n}", "type": "Streetlight", **attrs}


@pytest.fixture
def broker() -> Iterator[RunningBroker]:
    with start_broker(BrokerConfig(max_batch=3)) as running:
        yield running


def upsert(broker: RunningBroker, body: Any, headers: dict[str, str], options: str = "update") -> requests.Response:
    url = f"{broker.url}/ngsi-ld/v1/entityOperations/upsert"
    return requests.post(url, json=body, headers=headers, params={"options": options}, timeout=10)


def test_upsert_answers_201_with_the_new_ids_then_204(broker: RunningBroker) -> None:
    first = upsert(broker, [lamp(1, status="ok", **{"@context": CTX})], LD)
    assert first.status_code == 201 and first.json() == ["urn:ngsi-ld:Streetlight:t:1"]
    again = upsert(broker, [lamp(1, powerState="on")], JSON)
    assert again.status_code == 204 and again.content == b""
    assert broker.state.entities[("", "urn:ngsi-ld:Streetlight:t:1")] == lamp(1, status="ok", powerState="on")
    replaced = upsert(broker, [lamp(1, powerState="off")], JSON, options="replace")
    assert replaced.status_code == 204
    assert broker.state.entities[("", "urn:ngsi-ld:Streetlight:t:1")] == lamp(1, powerState="off")


@pytest.mark.parametrize(
    ("headers", "body", "status", "kind"),
    [
        ({"Content-Type": "text/plain"}, [lamp(1)], 415, "InvalidRequest"),  # neither JSON nor JSON-LD
        ({**LD, "Link": LINK}, [lamp(1, **{"@context": CTX})], 400, "BadRequestData"),  # both: an error
        ({"Content-Type": "application/json"}, [lamp(1)], 400, "LdContextNotAvailable"),  # no context at all
        (LD, {"id": "urn:x:1"}, 400, "BadRequestData"),  # not an array
        (LD, [lamp(n, **{"@context": CTX}) for n in range(4)], 413, "InvalidRequest"),  # past the limit
    ],
)
def test_requests_refused_whole(
    broker: RunningBroker, headers: dict[str, str], body: Any, status: int, kind: str
) -> None:
    answer = upsert(broker, body, headers)
    assert answer.status_code == status
    assert answer.json()["type"] == f"https://uri.etsi.org/ngsi-ld/errors/{kind}"
    assert broker.stats()["entities"] == 0


def test_a_batch_with_bad_entities_is_a_207_naming_each(broker: RunningBroker) -> None:
    body = [
        lamp(1, status="ok", **{"@context": CTX}),
        lamp(2, status="ok"),  # ld+json without @context
        {"id": "not a uri", "type": "Streetlight", "@context": CTX},
    ]
    answer = upsert(broker, body, LD)
    assert answer.status_code == 207
    result = answer.json()
    assert result["success"] == ["urn:ngsi-ld:Streetlight:t:1"]
    assert [e["entityId"] for e in result["errors"]] == ["urn:ngsi-ld:Streetlight:t:2", "not a uri"]
    assert {e["error"]["status"] for e in result["errors"]} == {400}
    geo = lamp(3, location={"type": "Point", "coordinates": [31.2, 121.4]})  # latitude first: wrong
    assert upsert(broker, [geo], JSON).json()["errors"][0]["error"]["type"].endswith("BadRequestData")


def test_the_batch_limit_can_be_a_400(broker: RunningBroker) -> None:
    broker.state.config.over_limit = 400
    answer = upsert(broker, [lamp(n) for n in range(4)], JSON)
    assert answer.status_code == 400 and "batch" in answer.json()["title"]


def test_temporal_store_counts_duplicate_instances(broker: RunningBroker) -> None:
    base = f"{broker.url}/ngsi-ld/v1/temporal/entities"
    instance = {"type": "Property", "value": 0.8, "observedAt": "2026-11-20T15:00:00Z"}
    body = {"id": "urn:ngsi-ld:Streetlight:t:1", "type": "Streetlight", "illuminanceLevel": [instance]}
    assert requests.post(base, json=body, headers=JSON, timeout=10).status_code == 201
    assert requests.post(base + "/", json=body, headers=JSON, timeout=10).status_code == 204
    attrs = f"{base}/urn:ngsi-ld:Streetlight:t:1/attrs"
    later = {**instance, "observedAt": "2026-11-20T16:00:00Z"}
    assert requests.post(attrs, json={"illuminanceLevel": [later]}, headers=JSON, timeout=10).status_code == 204
    unknown = f"{base}/urn:ngsi-ld:Streetlight:t:9/attrs"
    assert requests.post(unknown, json={"illuminanceLevel": [later]}, headers=JSON, timeout=10).status_code == 404
    stats = broker.stats()
    assert (stats["temporal_instances"], stats["duplicate_instances"]) == (3, 1)  # kept, and counted (#1518)
    query = {"attrs": "illuminanceLevel", "timerel": "between"}
    query |= {"timeAt": "2026-11-20T15:30:00Z", "endTimeAt": "2026-11-20T17:00:00Z"}
    found = requests.get(f"{base}/urn:ngsi-ld:Streetlight:t:1", params=query, headers=JSON, timeout=10).json()
    assert [i["observedAt"] for i in found["illuminanceLevel"]] == ["2026-11-20T16:00:00Z"]
    # An ordinary write whose attribute carries observedAt is history too.
    upsert(broker, [lamp(1, illuminanceLevel=instance)], JSON)
    assert broker.stats()["duplicate_instances"] == 2


def test_oauth2_client_credentials_and_bearer_checks() -> None:
    config = BrokerConfig(auth="oauth2", client_id="hub", client_secret="pw", token_ttl_seconds=60)
    with start_broker(config) as broker:
        token_url = f"{broker.url}/oauth2/token"
        form = {"grant_type": "client_credentials"}
        assert requests.post(token_url, data=form, auth=("hub", "nope"), timeout=10).status_code == 401
        refused = requests.post(token_url, data={"grant_type": "password"}, auth=("hub", "pw"), timeout=10)
        assert refused.json() == {"error": "unsupported_grant_type"}
        token = requests.post(token_url, data=form, auth=("hub", "pw"), timeout=10).json()
        assert token["token_type"] == "Bearer" and token["expires_in"] == 60
        assert upsert(broker, [lamp(1)], JSON).status_code == 401
        bearer = {**JSON, "Authorization": f"Bearer {token['access_token']}"}
        assert upsert(broker, [lamp(1)], bearer).status_code == 201


def test_injected_faults() -> None:
    with start_broker(BrokerConfig(http_fail_every=2, fail_fraction=0.5, seed=1)) as broker:
        assert upsert(broker, [lamp(n) for n in range(20)], JSON).status_code in (201, 207)
        assert upsert(broker, [lamp(1)], JSON).status_code == 503
        result = upsert(broker, [lamp(n) for n in range(20)], JSON).json()
        assert 0 < len(result["errors"]) < 20
        assert {e["error"]["type"].rsplit("/", 1)[-1] for e in result["errors"]} == {"InternalError"}
