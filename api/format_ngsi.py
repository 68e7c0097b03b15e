"""FIWARE NGSI-LD entities of the Smart Data Models, for the city-brain side.

Feeds and the models they map to (docs/formats.md has every attribute):
  env.air_quality_hourly  → AirQualityObserved, and NoiseLevelObserved when the hour has noise
  infra.assets_status     → Streetlight (streetlights only: there is no model for manhole covers)
  safety.alarms           → Alert

The representation is NGSI-LD key-values (`options=keyValues`, the "concise" form without
`{"type": "Property", "value": …}` wrappers): it is what the models' published JSON Schemas
validate, and a broker accepts it for upsert with the same `@context`. The body is a JSON
array of entities, each carrying its own `@context` (the NGSI-LD rule for
`application/ld+json` payloads). Entity ids are URNs derived from the row's key, so the same
row always gives the same id: observations are one entity per station and hour, a streetlight
is one entity (its daily rows are successive states of it), an alert is one entity per alarm.

Only the fields the consumer's policy grants are in the rows; an attribute whose field was not
granted (or is null) is left out, never filled in.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import pyarrow as pa

from api.format_viid import FeedFormat
from api.formats import register_format
from schemas.feeds import Feed

CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
CONTEXTS = {
    "environment": "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld",
    "streetlighting": "https://raw.githubusercontent.com/smart-data-models/dataModel.Streetlighting/master/context.jsonld",
    "alert": "https://raw.githubusercontent.com/smart-data-models/dataModel.Alert/master/context.jsonld",
}
DATA_PROVIDER = "Neuron Hub"

Entity = dict[str, Any]
Row = dict[str, Any]


@dataclass(frozen=True)
class Site:
    """Where a community is: the models require a location, and the feeds carry no coordinates."""

    name: str
    point: tuple[float, float]  # WGS 84 longitude, latitude (GeoJSON order)
    address: dict[str, str]


# The community's reference point stands for its devices' locations until the feeds carry
# coordinates (approximate: Changshou Road subdistrict, Putuo; WGS 84, not the GCJ-02 of maps).
SITES = {
    "music-square": Site(
        name="音乐广场",
        point=(121.4371, 31.2412),
        address={
            "addressCountry": "CN",
            "addressRegion": "上海市",
            "addressLocality": "普陀区",
            "district": "长寿路街道",
        },
    )
}


NOT_IN_ID = re.compile(r"[^A-Za-z0-9._-]")


@lru_cache(maxsize=4096)
def _id_part(text: str) -> str:
    # Letters, digits and -_. only: safe in a URN and in the models' id pattern. (Cached: the
    # same communities, stations and hours recur on every page.)
    return NOT_IN_ID.sub("-", text)


def urn(entity_type: str, *parts: str) -> str:
    """`urn:ngsi-ld:<type>:<part>:<part>…`, deterministic, each part safe in an NGSI-LD id."""
    return ":".join(["urn", "ngsi-ld", entity_type, *(_id_part(p) for p in parts)])


@lru_cache(maxsize=4096)
def utc(moment: datetime) -> str:
    """ISO 8601 UTC with a Z, as the models' examples write it."""
    if moment.tzinfo is None:  # feeds hold UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(value: Any) -> float | int | None:
    """A finite number, or None (JSON has no NaN)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if isinstance(value, int | float) else None


def _place(row: Row) -> Entity:
    """location, address and areaServed from the row's community (nothing if it is not known)."""
    site = SITES.get(str(row.get("community_id")))
    if site is None:
        return {}
    return {
        "location": {"type": "Point", "coordinates": list(site.point)},
        "address": dict(site.address),
        "areaServed": site.name,
    }


def _compact(entity: Entity) -> Entity:
    return {k: v for k, v in entity.items() if v is not None}


# --- env.air_quality_hourly --------------------------------------------------------------


def air_quality(row: Row) -> Iterator[Entity]:
    """An hour of one station: AirQualityObserved, and NoiseLevelObserved when noise was measured."""
    community, station, start = str(row.get("community_id")), str(row.get("device_id")), row.get("hour_start")
    if not isinstance(start, datetime):
        return  # an observation without its time is no observation
    end = start + timedelta(hours=1)
    common = {
        **_place(row),
        "name": row.get("location"),
        "refDevice": urn("Device", community, station),
        "dataProvider": DATA_PROVIDER,
    }
    humidity = _number(row.get("humidity_avg_pct"))
    yield _compact(
        {
            "id": urn("AirQualityObserved", community, station, utc(start)),
            "type": "AirQualityObserved",
            "dateObserved": utc(start),  # the hourly means are over [dateObserved, +1 h)
            **common,
            "typeofLocation": "outdoor",
            "pm25": _number(row.get("pm25_avg")),
            "pm10": _number(row.get("pm10_avg")),
            "temperature": _number(row.get("temperature_avg_c")),
            "relativeHumidity": None if humidity is None else round(humidity / 100, 4),
            "@context": [CONTEXTS["environment"], CORE_CONTEXT],
        }
    )
    laeq, lamax = _number(row.get("noise_laeq_db")), _number(row.get("noise_lamax_db"))
    if laeq is None and lamax is None:
        return
    yield _compact(
        {
            "id": urn("NoiseLevelObserved", community, station, utc(start)),
            "type": "NoiseLevelObserved",
            "dateObserved": f"{utc(start)}/{utc(end)}",
            "dateObservedFrom": utc(start),
            "dateObservedTo": utc(end),
            **common,
            "LAeq": laeq,
            "LAmax": lamax,
            "@context": [CONTEXTS["environment"], CORE_CONTEXT],
        }
    )


# --- infra.assets_status -----------------------------------------------------------------

POWER_STATE = {"on": "on", "off": "off", "dimmed": "low"}
# An open fault's type, most serious first, and the Streetlight status it means. A lost
# connection says nothing about the lamp itself: with only that open, the status stays ok.
FAULT_STATUS = [
    ("lamp_failure", "defectiveLamp"),
    ("driver_fault", "defectiveLamp"),
    ("leakage", "columnIssue"),
    ("power_loss", "columnIssue"),
]


def lamp_status(row: Row) -> str:
    """Streetlight `status`: ok unless the day left a fault open (more raised than cleared)."""
    raised, cleared = row.get("faults_raised") or 0, row.get("faults_cleared") or 0
    if raised <= cleared:
        return "ok"
    types = set(str(row.get("fault_types") or "").split(","))
    return next((status for fault, status in FAULT_STATUS if fault in types), "ok")


def streetlight(row: Row) -> Iterator[Entity]:
    """A lamp's state at the end of a day (covers have no Smart Data Model: none for them)."""
    if row.get("asset_type") != "streetlight":
        return
    community, lamp = str(row.get("community_id")), str(row.get("device_id"))
    brightness = _number(row.get("brightness_pct"))
    reported = row.get("last_report_at")
    yield _compact(
        {
            "id": urn("Streetlight", community, lamp),
            "type": "Streetlight",
            **_place(row),
            "name": lamp,
            "status": lamp_status(row),
            "powerState": POWER_STATE.get(str(row.get("state"))),
            "illuminanceLevel": None if brightness is None else round(brightness / 100, 4),
            "observationDateTime": utc(reported) if isinstance(reported, datetime) else None,
            "refDevice": [urn("Device", community, lamp)],
            "dataProvider": DATA_PROVIDER,
            "@context": [CONTEXTS["streetlighting"], CORE_CONTEXT],
        }
    )


# --- safety.alarms ------------------------------------------------------------------------

# Our alarm categories as the Alert model's category and subCategory. The model has no
# subcategory for a gas leak, an SOS call or a heart-rate alarm: they keep the nearest category
# and no subCategory (the alarm's own category is in `data`).
ALERT_CATEGORY: dict[str, tuple[str, str | None]] = {
    "smoke": ("security", "buildingFire"),
    "gas": ("security", None),
    "fence_intrusion": ("security", "suspiciousAction"),
    "fall": ("health", "fallenPatient"),
    "sos": ("health", None),
    "heart_rate": ("health", None),
    "manhole_open": ("traffic", "hazardOnRoad"),
    "manhole_tilt": ("traffic", "hazardOnRoad"),
    "water_level": ("environment", "floodRisk"),
}
SEVERITIES = {"low", "medium", "high", "critical"}
# The alarm's lifecycle and place, as far as the policy grants them, in the Alert's `data`.
ALERT_DATA = {
    "category": "category",
    "family": "family",
    "state": "state",
    "acknowledged_at": "acknowledgedAt",
    "acknowledged_by": "acknowledgedBy",
    "cleared_at": "clearedAt",
    "response_seconds": "responseSeconds",
    "resolution_seconds": "resolutionSeconds",
    "escalated": "escalated",
    "updates": "updates",
    "building": "building",
    "unit": "unit",
    "room_no": "roomNo",  # sealed to the consumer's key when granted at all
}


def _data_value(value: Any) -> Any:
    return utc(value) if isinstance(value, datetime) else value


def alert(row: Row) -> Iterator[Entity]:
    """One alarm, with its latest lifecycle state."""
    community, alarm_id, raised = str(row.get("community_id")), str(row.get("alarm_id")), row.get("raised_at")
    if not isinstance(raised, datetime):
        return  # dateIssued is required: an alarm without its time cannot be an Alert
    category, sub_category = ALERT_CATEGORY.get(str(row.get("category")), ("security", None))
    cleared = row.get("cleared_at")
    severity = row.get("severity")
    data = {key: _data_value(row[name]) for name, key in ALERT_DATA.items() if row.get(name) is not None}
    yield _compact(
        {
            "id": urn("Alert", community, alarm_id),
            "type": "Alert",
            "category": category,
            "subCategory": sub_category,
            "severity": severity if severity in SEVERITIES else None,
            "dateIssued": utc(raised),
            "validFrom": utc(raised),
            "validTo": utc(cleared) if isinstance(cleared, datetime) else None,
            "alertSource": urn("AlarmSystem", community, str(row.get("family") or "unknown")),
            **_place(row),
            "description": f"{row.get('category')} alarm",
            "data": data,
            "dataProvider": DATA_PROVIDER,
            "@context": [CORE_CONTEXT, CONTEXTS["alert"]],
        }
    )


MAPPERS: dict[str, Callable[[Row], Iterator[Entity]]] = {
    "env.air_quality_hourly": air_quality,
    "infra.assets_status": streetlight,
    "safety.alarms": alert,
}


def entities(rows: list[Row], feed: str) -> list[Entity]:
    """The NGSI-LD entities of a feed's rows, in row order."""
    mapper = MAPPERS[feed]
    return [entity for row in rows for entity in mapper(row)]


def render(tables: list[pa.Table], fields: list[str], feed: Feed) -> bytes:
    """A page of rows as a JSON array of NGSI-LD key-values entities (UTF-8)."""
    rows = [row for table in tables for row in table.to_pylist()]
    return json.dumps(entities(rows, feed.name), ensure_ascii=False, separators=(",", ":")).encode()


NGSI_LD = FeedFormat("ngsi-ld", "application/ld+json", render, standard=True, feeds=frozenset(MAPPERS))
register_format(NGSI_LD)
