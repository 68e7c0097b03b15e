"""The export API's routes: health, metrics, the hub's keys, the caller's catalog and feed
details (records, changes and partitions are in api.exports, alarms in api.alarms).

Handlers are plain functions (FastAPI runs them in its thread pool) because they read
the control database synchronously.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import bindparam, distinct, func, select, text

from api.deps import NOT_FOUND, GrantDep, Hub, HubDep, PolicyDep
from api.metrics import CONTENT_TYPE
from api.openapi import PUBLIC_ERRORS, SIGNED, V1_ERRORS, answers, errors, json_response
from api.schemas import Catalog, FeedDetail, Health, Jwks
from privacy.feed_dictionary import received_fields
from privacy.policy import pipl_art73
from warehouse.control import engine_for
from warehouse.models import Partition
from warehouse.quality import cached_feed_quality

public = APIRouter()
v1 = APIRouter(prefix="/v1")
PUBLISHED = select(func.max(Partition.watermark), func.count(distinct(Partition.partition_key))).where(
    Partition.consumer == bindparam("consumer"), Partition.feed == bindparam("feed")
)


@public.get(
    "/healthz",
    response_model=None,
    responses=answers({200: json_response("Up.", Health), 503: json_response("Degraded.", Health)}, 429),
)
def healthz(hub: HubDep) -> JSONResponse:
    """Liveness, and whether the control database answers."""
    try:
        with engine_for(hub.settings.control_url).connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        return JSONResponse({"status": "degraded", "control_db": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "control_db": "reachable"})


@public.get(
    "/metrics",
    response_model=None,
    responses=answers(
        {
            200: {"description": "Prometheus text format.", "content": {"text/plain": {}}, "headers": SIGNED},
            404: errors(404)[404],
        },
        *PUBLIC_ERRORS,
    ),
)
def metrics(hub: HubDep, request: Request) -> Response:
    """Prometheus metrics, for the networks in `api.metrics_networks` (others: the usual 404)."""
    if not hub.options.metrics_allowed(request.client.host if request.client else None):
        raise HTTPException(404, NOT_FOUND)
    return Response(hub.metrics.render(), media_type=CONTENT_TYPE)


@public.get(
    "/.well-known/jwks.json",
    response_model=None,
    responses=answers({200: json_response("The hub's public keys.", Jwks)}, *PUBLIC_ERRORS),
)
def jwks(hub: HubDep) -> dict[str, Any]:
    """The hub's public signing keys (every key whose signatures may still be in use)."""
    return hub.keys.jwks()


def _published(hub: Hub, consumer: str, feed: str) -> tuple[datetime | None, int]:
    """The latest watermark and the number of partitions published for the consumer."""
    # Core rather than an ORM session: the catalog runs this for every feed of every call.
    with engine_for(hub.settings.control_url).connect() as connection:
        watermark, partitions = connection.execute(PUBLISHED, {"consumer": consumer, "feed": feed}).one()
    return watermark, partitions


def _latest_report(hub: Hub, consumer: str, feed: str) -> dict[str, Any] | None:
    """The de-identification report signed into the manifest of the consumer's latest release
    of the feed (issue 16): what that release discloses and how well it is protected."""
    query = (
        select(Partition.path)
        .where(Partition.consumer == consumer, Partition.feed == feed)
        .order_by(Partition.published_at.desc(), Partition.partition_key.desc(), Partition.version.desc())
        .limit(1)
    )
    with engine_for(hub.settings.control_url).connect() as connection:
        path = connection.execute(query).scalar()
    manifest = hub.settings.lake_path / str(path).replace(".parquet", ".manifest.jws") if path else None
    if manifest is None or not manifest.is_file():
        return None
    payload = manifest.read_text().split(".")[1]
    report: dict[str, Any] | None = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).get(
        "deidentification"
    )
    return report


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _quality(hub: Hub, feed: str, request: Request) -> dict[str, Any]:
    """The feed's data-quality status and freshness by the hub's clock; the status is recomputed
    at most every 30 s (a few control-DB queries), not on every catalog call."""
    found = cached_feed_quality(hub.settings, feed, request.app.state.now())
    return {k: found[k] for k in ("status", "freshness_seconds", "checked_at", "period")}


@v1.get(
    "/feeds", response_model=None, responses=answers({200: json_response("The caller's catalog.", Catalog)}, *V1_ERRORS)
)
def catalog(hub: HubDep, policy: PolicyDep, request: Request) -> dict[str, Any]:
    """The feeds the caller's policy grants, with their freshness and data quality."""
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
                "quality": _quality(hub, name, request),
            }
        )
    return {"feeds": feeds}


@v1.get(
    "/feeds/{feed}",
    response_model=None,
    responses=answers({200: json_response("One feed as the caller receives it.", FeedDetail)}, *V1_ERRORS),
)
def feed_detail(hub: HubDep, grant: GrantDep, request: Request) -> dict[str, Any]:
    """What the caller receives of one feed, field by field, and under which rule."""
    feed, policy = grant.feed, grant.policy
    watermark, partitions = _published(hub, policy.consumer, feed.name)
    return {
        "name": feed.name,
        "version": feed.version,
        "title": feed.title.model_dump(),
        "description": feed.description.model_dump(),
        "cadence": feed.cadence,
        "partition_by": feed.partition_by,
        # As this consumer receives them: meaning, unit, type, treatment, legal basis.
        "fields": [{**f, "description": f["meaning"]} for f in received_fields(feed, policy)],
        "policy": {
            "name": grant.policy_name,
            "title": policy.title,
            "version": policy.version,
            "fingerprint": hub.fingerprint(policy),
            "retention_days": policy.retention_days,
        },
        "legal_basis": policy.legal_basis,
        # PIPL Art. 73: "anonymised" only if no field of this view can identify anyone.
        "pipl_art73": pipl_art73(feed, policy),
        "k": policy.feeds[feed.name].k,
        "watermark": _iso(watermark),
        "partitions": partitions,
        "quality": _quality(hub, feed.name, request),
        "deidentification": _latest_report(hub, policy.consumer, feed.name),
    }
