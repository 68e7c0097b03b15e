"""Where rows leave the hub: a feed's records (pages or whole partitions), its change log,
and single partition versions by opaque id.

Handlers are `async` and push their blocking reads to a worker thread with `offload`, so
the gate's time limit can cut a request off (see api.middleware).
"""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import quote

import pyarrow.parquet as pq
from fastapi import APIRouter, HTTPException, Path, Query, Response
from sqlalchemy.orm import Session

from api.deps import NOT_FOUND, Grant, GrantDep, Hub, HubDep, NoteDep, offload
from api.formats import FormatName, NotOffered, format_for
from api.notes import RequestNote
from api.openapi import CURSOR, SIGNED, V1_ERRORS, answers, json_response
from api.records import (
    CURSOR_MAX_LENGTH,
    CURSOR_PATTERN,
    Cursor,
    latest_versions,
    next_partition,
    partition_path,
    read_page,
    served_entry,
    within_policy,
)
from api.schemas import Change, Changes
from api.streaming import PARQUET, PartitionFile
from warehouse.control import session_scope
from warehouse.models import Partition

exports = APIRouter(prefix="/v1")
CursorQuery = Annotated[
    str | None,
    Query(max_length=CURSOR_MAX_LENGTH, pattern=CURSOR_PATTERN, description="An opaque cursor the hub handed out."),
]
LimitQuery = Annotated[int | None, Query(ge=1, description="Rows (or entries) at most; capped by the hub.")]
PARTITION_HEADERS = {
    **CURSOR,
    "Neuron-Manifest": {**SIGNED["Signature"], "description": "The partition's manifest (compact JWS)."},
    "Neuron-Partition": {**SIGNED["Signature"], "description": "The partition key, percent-encoded."},
    "Neuron-Partition-Version": {**SIGNED["Signature"], "description": "The version served."},
}
CAUGHT_UP: dict[str, Any] = {"description": "Caught up (parquet).", "headers": {**SIGNED, **CURSOR}}
RECORDS_OK: dict[str, Any] = {
    "description": "A page of rows (ndjson, csv, ngsi-ld, viid) or one whole partition version (parquet).",
    "content": {
        "application/x-ndjson": {},
        "text/csv": {},
        PARQUET: {},
        "application/ld+json": {},  # format=ngsi-ld
        "application/json": {},  # format=viid
    },
    "headers": {**SIGNED, **CURSOR},
}

PARTITION_OK = {**RECORDS_OK, "content": {PARQUET: {}}, "headers": {**SIGNED, **PARTITION_HEADERS}}


def _check_limit(limit: int | None, cap: int) -> int | None:
    if limit is not None and limit > cap:
        raise HTTPException(422, f"limit must be between 1 and {cap}")
    return limit


def _cursor(text: str | None) -> Cursor:
    try:
        return Cursor.decode(text)
    except ValueError:
        raise HTTPException(422, "invalid cursor") from None


@exports.get(
    "/feeds/{feed}/records",
    response_model=None,
    responses=answers(
        {200: RECORDS_OK, 204: {"description": "Caught up (parquet).", "headers": {**SIGNED, **CURSOR}}},
        *V1_ERRORS,
        406,
    ),
)
async def records(
    hub: HubDep,
    grant: GrantDep,
    note: NoteDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = None,
    fmt: Annotated[FormatName, Query(alias="format")] = "ndjson",
) -> Response:
    """The caller's records after `cursor`: a page of rows, or one whole partition version."""
    limit = _check_limit(limit, hub.settings.api.max_page_size)
    position = _cursor(cursor)
    try:
        record_format = format_for(grant.feed, fmt)
    except NotOffered as exc:
        raise HTTPException(406, str(exc)) from None
    note.format = fmt
    if record_format.render is None:
        return await offload(_partition_response, hub, grant, note, cursor, position)
    size = limit or hub.settings.api.default_page_size
    return await offload(_page_response, hub, grant, note, cursor, position, size, fmt)


def _page_response(
    hub: Hub, grant: Grant, note: RequestNote, given: str | None, position: Cursor, limit: int, fmt: str
) -> Response:
    feed, policy = grant.feed, grant.policy
    fields = policy.published_fields(feed)
    with session_scope(hub.settings.control_url) as session:
        page = read_page(session, hub.settings.lake_path, policy.consumer, feed.name, fields, position, limit, policy)
    note.rows, note.partitions, note.fields = page.count, page.served, fields
    # Caught up: hand back the very cursor the consumer sent.
    next_cursor = given if given and page.next_cursor == position else page.next_cursor.encode()
    record_format = format_for(feed, fmt)
    assert record_format.render is not None
    body = record_format.render(page.chunks, fields, feed)
    return Response(body, media_type=record_format.media_type, headers={"Neuron-Next-Cursor": next_cursor})


def _file_response(
    hub: Hub, partition: Partition, path: FilePath, note: RequestNote, headers: dict[str, str]
) -> Response:
    note.rows, note.partitions = partition.rows, [served_entry(partition, partition.rows)]
    note.fields = pq.read_schema(path).names
    headers = {
        **headers,
        "Neuron-Manifest": partition.manifest_jws,
        # Header values must be ASCII; keys are ASCII today, but percent-encoding keeps it so.
        "Neuron-Partition": quote(partition.partition_key, safe="/="),
        "Neuron-Partition-Version": str(partition.version),
    }
    return PartitionFile(path, partition.sha256, headers, hub.options.stream_chunk_bytes)


def _partition_response(hub: Hub, grant: Grant, note: RequestNote, given: str | None, position: Cursor) -> Response:
    feed, policy = grant.feed, grant.policy
    granted = policy.published_fields(feed)
    with session_scope(hub.settings.control_url) as session:
        found = next_partition(session, hub.settings.lake_path, policy.consumer, feed.name, granted, position, policy)
    if found is None:
        note.rows = 0
        return Response(status_code=204, headers={"Neuron-Next-Cursor": given or position.encode()})
    partition, path = found
    return _file_response(hub, partition, path, note, {"Neuron-Next-Cursor": Cursor(partition.seq + 1, 0).encode()})


@exports.get(
    "/feeds/{feed}/changes",
    response_model=None,
    responses=answers({200: json_response("New partition versions after `since`.", Changes, CURSOR)}, *V1_ERRORS),
)
async def changes(
    hub: HubDep, grant: GrantDep, note: NoteDep, since: CursorQuery = None, limit: LimitQuery = None
) -> Response:
    """The partition versions published for the caller after `since`, superseded ones left out."""
    cap = hub.options.max_changes
    limit = _check_limit(limit, cap) or cap
    position = _cursor(since)
    listed = await offload(_changes, hub, grant, position, limit)
    note.rows = 0
    next_cursor = listed[-1].cursor if listed else since or position.encode()
    body = Changes(feed=grant.feed.name, changes=listed, next=next_cursor).model_dump_json().encode()
    return Response(body, media_type="application/json", headers={"Neuron-Next-Cursor": next_cursor})


def _changes(hub: Hub, grant: Grant, position: Cursor, limit: int) -> list[Change]:
    feed, policy = grant.feed, grant.policy
    granted = policy.published_fields(feed)
    listed: list[Change] = []
    with session_scope(hub.settings.control_url) as session:
        for partition in latest_versions(session, policy.consumer, feed.name, position.seq):
            if len(listed) >= limit:
                break
            path = partition_path(hub.settings.lake_path, partition)
            if not within_policy(path, granted, partition, policy):
                break  # withheld until re-published, as in records: the log stops before it
            listed.append(_change(hub, feed.name, policy.consumer, partition))
    return listed


def _change(hub: Hub, feed: str, consumer: str, partition: Partition) -> Change:
    partition_id = hub.partition_ids.encode(consumer, partition.seq)
    return Change(
        id=partition_id,
        href=f"/v1/feeds/{feed}/partitions/{partition_id}",
        partition=partition.partition_key,
        version=partition.version,
        supersedes=partition.version - 1 if partition.version > 1 else None,
        rows=partition.rows,
        sha256=partition.sha256,
        watermark=partition.watermark,
        published_at=partition.published_at,
        policy_fingerprint=partition.policy_fingerprint,
        cursor=Cursor(partition.seq + 1, 0).encode(),
    )


@exports.get(
    "/feeds/{feed}/partitions/{partition_id}",
    response_model=None,
    responses=answers(
        {200: {**RECORDS_OK, "content": {PARQUET: {}}, "headers": {**SIGNED, **PARTITION_HEADERS}}}, *V1_ERRORS
    ),
)
async def partition(
    hub: HubDep, grant: GrantDep, note: NoteDep, partition_id: Annotated[str, Path(max_length=64)]
) -> Response:
    """One partition version (any the caller was published, superseded ones included) and its manifest."""
    note.format = "parquet"
    return await offload(_partition_by_id, hub, grant, note, partition_id)


def _partition_by_id(hub: Hub, grant: Grant, note: RequestNote, partition_id: str) -> Response:
    policy, feed = grant.policy, grant.feed
    seq = hub.partition_ids.decode(policy.consumer, partition_id)
    with session_scope(hub.settings.control_url) as session:
        found = _own(session, seq, policy.consumer, feed.name)
    if found is None:
        raise HTTPException(404, NOT_FOUND)
    path = partition_path(hub.settings.lake_path, found)
    if not within_policy(path, policy.published_fields(feed), found, policy):
        raise HTTPException(404, NOT_FOUND)  # no longer granted as published
    return _file_response(hub, found, path, note, {})


def _own(session: Session, seq: int | None, consumer: str, feed: str) -> Partition | None:
    found = session.get(Partition, seq) if seq is not None else None
    return found if found is not None and (found.consumer, found.feed) == (consumer, feed) else None
