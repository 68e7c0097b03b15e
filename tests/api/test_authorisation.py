"""Authorisation between consumers: objects (OWASP API1), properties (API3) and functions
(API5). A consumer reaches only its own partitions, only the fields its policy grants, and
no function beyond reading its feeds; everything else reads as "not found"."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from sqlalchemy import select

from api.client import verify_response
from api.signing import sign_request
from tests.api.hub import FLOW_FIELDS, FLOW_MORE, LiveHub, send
from tests.api.lake import FEED, as_json
from warehouse.control import session_scope
from warehouse.models import AuditEntry

NOT_GRANTED = set(FLOW_MORE)  # public_security's policy grants FLOW_FIELDS only


def test_a_cursor_of_another_consumer_only_moves_within_the_callers_own_rows(live_hub: LiveHub) -> None:
    with live_hub.client("district") as district:
        _, district_cursor = district.records_ndjson(FEED, limit=12)
    with live_hub.client("public_security") as police:
        rows, _ = police.records_ndjson(FEED, cursor=district_cursor, limit=50)
    theirs = [row for p in live_hub.latest("public_security") for row in as_json(p.rows)]
    assert all(row in theirs for row in rows)  # a position, not a key: nothing of the district's


def test_policy_fields_hold_in_every_endpoint_and_format(live_hub: LiveHub, tmp_path: Path) -> None:
    with live_hub.client("public_security") as client:
        detail = client.feed(FEED)
        rows, _ = client.records_ndjson(FEED, limit=50)
        text, _ = client.records_csv(FEED, limit=50)
        download, _ = client.next_partition(FEED, None)
        changes, _ = client.changes(FEED)
        dest = tmp_path / "p.parquet"
        client.download_partition(FEED, changes[0]["id"], dest)
    assert download is not None
    seen = {
        "feed detail": [f["name"] for f in detail["fields"]],
        "ndjson": sorted({key for row in rows for key in row}),
        "csv": next(csv.reader(io.StringIO(text))),
        "parquet page": pq.read_schema(pa.BufferReader(download.data)).names,
        "partition by id": pq.read_schema(dest).names,
    }
    for where, names in seen.items():
        assert set(names) == set(FLOW_FIELDS), where
    assert not NOT_GRANTED & set(json.dumps(changes).replace('"', " ").split())


def test_the_audit_log_names_the_fields_each_consumer_received(fresh_hub: LiveHub) -> None:
    for consumer in ("district", "public_security"):
        with fresh_hub.client(consumer) as client:
            client.records_ndjson(FEED, limit=1)
    with session_scope(fresh_hub.settings.control_url) as session:
        entries = session.execute(select(AuditEntry).where(AuditEntry.feed == FEED)).scalars().all()
        fields = {e.actor: json.loads(e.detail or "{}").get("fields") for e in entries}
    assert fields == {"district": FLOW_FIELDS + FLOW_MORE, "public_security": FLOW_FIELDS}


@pytest.mark.parametrize("path", ["/admin", "/admin/", "/admin/audit", "/admin/consumers/district/revoke"])
def test_admin_paths_are_not_found_with_a_consumer_key(live_hub: LiveHub, path: str) -> None:
    response = send(live_hub.signed(path, live_hub.identities["district"]))
    verify_response(response, live_hub.jwks)
    assert (response.status_code, response.json()) == (404, {"detail": "not found"})
    # Unsigned too: the console has a listener of its own (issue 17), never the consumers' port.
    unsigned = send(live_hub.signed(path, None))
    verify_response(unsigned, live_hub.jwks)
    assert (unsigned.status_code, unsigned.json()) == (404, {"detail": "not found"})


def test_an_admin_route_is_never_reached_with_a_consumer_key(fresh_hub: LiveHub) -> None:
    reached: list[str] = []

    @fresh_hub.app.get("/admin/probe")
    def probe() -> dict[str, str]:  # stands in for the console of issue 8
        reached.append("probe")
        return {"secret": "console"}

    response = send(fresh_hub.signed("/admin/probe", fresh_hub.identities["district"]))
    verify_response(response, fresh_hub.jwks)
    assert (response.status_code, reached) == (404, [])
    with session_scope(fresh_hub.settings.control_url) as session:
        entry = session.execute(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).scalar_one()
    # The attempt is on record, under the consumer that made it.
    assert (entry.actor, entry.path, entry.status_code, json.loads(entry.detail or "{}")["reason"]) == (
        "district",
        "/admin/probe",
        404,
        "admin_realm",
    )


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_only_reading_is_possible(live_hub: LiveHub, method: str) -> None:
    identity = live_hub.identities["district"]
    body = b'{"feeds": []}'
    request = requests.Request(method, f"{live_hub.url}/v1/feeds", data=body).prepare()
    sign_request(request, identity.key_id, identity.private_key, body=body)
    response = send(request)
    verify_response(response, live_hub.jwks)
    assert response.status_code == 405


def test_a_body_without_a_signed_matching_digest_is_refused(live_hub: LiveHub) -> None:
    identity = live_hub.identities["district"]
    request = requests.Request("POST", f"{live_hub.url}/v1/feeds", data=b"payload").prepare()
    sign_request(request, identity.key_id, identity.private_key)  # signs the head only
    response = send(request)
    verify_response(response, live_hub.jwks)
    assert (response.status_code, response.json()) == (
        401,
        {"detail": "a request body needs a signed, matching Content-Digest"},
    )
    altered = requests.Request("POST", f"{live_hub.url}/v1/feeds", data=b"payload").prepare()
    sign_request(altered, identity.key_id, identity.private_key, body=b"payload")
    altered.body = b"PAYLOAD"  # changed after signing: the digest no longer matches
    assert send(altered).status_code == 401
