"""`GET /v1/alarms?since=`: the caller's alarm history, oldest first.

Source: the published partitions of feed `safety.alarms` for the caller (the relay lands
alarms in the warehouse, and the publisher applies the caller's policy as for any feed:
building level for the district, unit level for public security). Rows are read exactly
as `records` reads them, in publication order with superseded versions skipped, and
`since` is the same kind of opaque cursor. Until that feed is in the catalog, or where
the caller's policy does not grant it, the answer is an empty list: the same answer either
way, so it tells nothing about other consumers' alarms. Real-time delivery is the relay's
(MQTT); this endpoint is for catching up.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel

from api.deps import Hub, HubDep, NoteDep, PolicyDep, offload
from api.formats import json_value
from api.notes import RequestNote
from api.openapi import CURSOR, V1_ERRORS, answers, json_response
from api.records import CURSOR_MAX_LENGTH, CURSOR_PATTERN, Cursor, Page, read_page
from privacy.policy import Policy
from warehouse.control import session_scope

ALARM_FEED = "safety.alarms"
alarms_router = APIRouter(prefix="/v1")


class Alarms(BaseModel):
    """Alarms after a cursor, and where to ask next."""

    alarms: list[dict[str, Any]]
    next: str


@alarms_router.get(
    "/alarms",
    response_model=None,
    responses=answers({200: json_response("The caller's alarms after `since`.", Alarms, CURSOR)}, *V1_ERRORS),
)
async def alarms(
    hub: HubDep,
    policy: PolicyDep,
    note: NoteDep,
    since: Annotated[str | None, Query(max_length=CURSOR_MAX_LENGTH, pattern=CURSOR_PATTERN)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """Alarms (rows of `safety.alarms` as the caller's policy publishes them) after `since`."""
    cap = hub.settings.api.max_page_size
    if limit is not None and limit > cap:
        raise HTTPException(422, f"limit must be between 1 and {cap}")
    try:
        position = Cursor.decode(since)
    except ValueError:
        raise HTTPException(422, "invalid cursor") from None
    note.format = "json"
    page = await offload(_alarm_page, hub, policy, note, position, limit or hub.settings.api.default_page_size)
    next_cursor = since if since and page.next_cursor == position else page.next_cursor.encode()
    # Rendered as ndjson renders rows (ISO 8601 with +00:00), so the two read the same.
    body = json.dumps({"alarms": page.rows, "next": next_cursor}, default=json_value, ensure_ascii=False).encode()
    return Response(body, media_type="application/json", headers={"Neuron-Next-Cursor": next_cursor})


def _alarm_page(hub: Hub, policy: Policy | None, note: RequestNote, position: Cursor, limit: int) -> Page:
    feed = hub.feeds.get(ALARM_FEED)
    if feed is None or policy is None or not policy.grants(ALARM_FEED):
        note.rows = 0
        return Page(chunks=[], next_cursor=position)
    fields = policy.published_fields(feed)
    with session_scope(hub.settings.control_url) as session:
        page = read_page(session, hub.settings.lake_path, policy.consumer, ALARM_FEED, fields, position, limit, policy)
    note.feed, note.rows, note.partitions, note.fields = ALARM_FEED, page.count, page.served, fields
    return page
