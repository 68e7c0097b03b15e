"""The export API's routes: health, the hub's keys, the caller's catalog, feed details and records.

Handlers are plain functions (FastAPI runs them in its thread pool) because they read
the control database and Parquet files synchronously.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import JSONResponse
from sqlalchemy import distinct, func, select, text

from api.audit import RequestNote
from api.deps import Grant, GrantDep, Hub, HubDep, NoteDep, PolicyDep
from api.records import Cursor, ndjson, next_partition, read_page, served_entry
from warehouse.control import Partition, engine_for, session_scope

NDJSON = "application/x-ndjson"
PARQUET = "application/vnd.apache.parquet"

public = APIRouter()
v1 = APIRouter(prefix="/v1")


@public.get("/healthz")
def healthz(hub: HubDep) -> JSONResponse:
    """Liveness, and whether the control database answers."""
    try:
        with engine_for(hub.settings.control_url).connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        return JSONResponse({"status": "degraded", "control_db": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "control_db": "reachable"})


@public.get("/.well-known/jwks.json")
def jwks(hub: HubDep) -> dict[str, Any]:
    """The hub's public signing keys (every key whose signatures may still be in use)."""
    return hub.keys.jwks()


def _published(hub: Hub, consumer: str, feed: str) -> tuple[datetime | None, int]:
    """The latest watermark and the number of partitions published for the consumer."""
    with session_scope(hub.settings.control_url) as session:
        watermark, partitions = session.execute(
            select(func.max(Partition.watermark), func.count(distinct(Partition.partition_key))).where(
                Partition.consumer == consumer, Partition.feed == feed
            )
        ).one()
    return watermark, partitions


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@v1.get("/feeds")
def catalog(hub: HubDep, policy: PolicyDep) -> dict[str, Any]:
    """The feeds the caller's policy grants, with their freshness."""
    feeds = []
    for name, feed in hub.feeds.items():
        if policy is None or not policy.grants(name):
            continue
        watermark, partitions = _published(hub, policy.consumer, name)
        feeds.append(
            {
                "name": name,
                "title": feed.title.model_dump(),
                "cadence": feed.cadence,
                "version": feed.version,
                "watermark": _iso(watermark),
                "partitions": partitions,
            }
        )
    return {"feeds": feeds}


@v1.get("/feeds/{feed}")
def feed_detail(hub: HubDep, grant: GrantDep) -> dict[str, Any]:
    """What the caller receives of one feed, field by field, and under which rule."""
    feed, policy = grant.feed, grant.policy
    operators = policy.feeds[feed.name].fields
    watermark, partitions = _published(hub, policy.consumer, feed.name)
    received = set(policy.published_fields(feed))
    return {
        "name": feed.name,
        "version": feed.version,
        "title": feed.title.model_dump(),
        "description": feed.description.model_dump(),
        "cadence": feed.cadence,
        "partition_by": feed.partition_by,
        "fields": [
            {
                "name": f.name,
                "type": f.type,
                "unit": f.unit,
                "description": f.description.model_dump(),
                "treatment": operators[f.name],
            }
            for f in feed.fields
            if f.name in received
        ],
        "policy": {
            "name": grant.policy_name,
            "title": policy.title,
            "version": policy.version,
            "fingerprint": policy.fingerprint,
            "retention_days": policy.retention_days,
        },
        "legal_basis": policy.legal_basis,
        "watermark": _iso(watermark),
        "partitions": partitions,
    }


@v1.get("/feeds/{feed}/records")
def records(
    hub: HubDep,
    grant: GrantDep,
    note: NoteDep,
    cursor: str | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    fmt: Annotated[Literal["ndjson", "parquet"], Query(alias="format")] = "ndjson",
) -> Response:
    """The caller's records after `cursor`: a page of rows, or one whole partition version."""
    settings = hub.settings
    if limit is not None and limit > settings.api.max_page_size:
        raise HTTPException(422, f"limit must be between 1 and {settings.api.max_page_size}")
    try:
        position = Cursor.decode(cursor)
    except ValueError:
        raise HTTPException(422, "invalid cursor") from None
    if fmt == "parquet":
        return _partition_response(hub, grant, note, cursor, position)
    return _page_response(hub, grant, note, cursor, position, limit or settings.api.default_page_size)


def _page_response(
    hub: Hub, grant: Grant, note: RequestNote, given: str | None, position: Cursor, limit: int
) -> Response:
    feed, policy = grant.feed, grant.policy
    with session_scope(hub.settings.control_url) as session:
        page = read_page(
            session,
            hub.settings.lake_path,
            policy.consumer,
            feed.name,
            policy.published_fields(feed),
            position,
            limit,
        )
    note.rows, note.partitions = len(page.rows), page.served
    # Caught up: hand back the very cursor the consumer sent.
    next_cursor = given if given and page.next_cursor == position else page.next_cursor.encode()
    return Response(ndjson(page.rows), media_type=NDJSON, headers={"Neuron-Next-Cursor": next_cursor})


def _partition_response(hub: Hub, grant: Grant, note: RequestNote, given: str | None, position: Cursor) -> Response:
    feed, policy = grant.feed, grant.policy
    with session_scope(hub.settings.control_url) as session:
        found = next_partition(
            session, hub.settings.lake_path, policy.consumer, feed.name, policy.published_fields(feed), position
        )
    if found is None:
        note.rows = 0
        return Response(status_code=204, headers={"Neuron-Next-Cursor": given or position.encode()})
    partition, data = found
    note.rows, note.partitions = partition.rows, [served_entry(partition, partition.rows)]
    headers = {
        "Neuron-Manifest": partition.manifest_jws,
        # Header values must be ASCII; keys are ASCII today, but percent-encoding keeps it so.
        "Neuron-Partition": quote(partition.partition_key, safe="/="),
        "Neuron-Partition-Version": str(partition.version),
        "Neuron-Next-Cursor": Cursor(partition.seq + 1, 0).encode(),
    }
    return Response(data, media_type=PARQUET, headers=headers)
