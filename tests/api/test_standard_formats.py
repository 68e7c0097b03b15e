"""Standard formats over the real API: FIWARE NGSI-LD entities that validate against the Smart
Data Models' own JSON Schemas (resolved offline), and GA/T 1400 (VIID) motor-vehicle records
whose plates stay sealed to the entitled consumer.

One hub for the module (tests/api/hub.py), with the catalog's real feed definitions; the
tests grant the feeds to the test consumers and publish small hand-written partitions, as the
publisher would. Every expected value below is written by hand from the mapping in
docs/formats.md, not computed by the code under test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

import pipeline
from api.client import HubRefused, verify_response
from api.consumers import register_consumer
from api.format_ngsi import render as render_ngsi
from api.format_viid import render as render_viid
from kernel.errors import IntegrityError
from privacy.policy import FeedGrant
from privacy.seal import Recipient, open_sealed, seal
from schemas.feeds import load_feeds
from tests.api.hub import LiveHub, public_pem, running_hub, send
from tests.api.lake import ARROW, COMMUNITY, publish_table
from tests.leaks import find_leaks
from tests.warehouse.marts import fixtures_devices as devices
from warehouse.recipients import register_encryption_key

AIR, ASSETS, ALARMS, PASSES = "env.air_quality_hourly", "infra.assets_status", "safety.alarms", "traffic.vehicle_passes"
DAY = date(2026, 11, 20)
PEM_PUBLIC = (serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
KEY = f"community_id={COMMUNITY}/day={DAY.isoformat()}"

# --- the models' schemas, offline ------------------------------------------------------------

MODELS = Path(__file__).parent / "smart_data_models"
REFS = {  # each $ref URL the schemas use, and the copy that stands for it
    "https://smart-data-models.github.io/data-models/common-schema.json": "common-schema.json",
    "https://smart-data-models.github.io/dataModel.Alert/alert-schema.json": "Alert/alert-schema.json",
    "https://smart-data-models.github.io/dataModel.Weather/weather-schema.json": "weather-schema.json",
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/Environment-schema.json": (
        "Environment-schema.json"
    ),
}


def _registry() -> Registry:  # type: ignore[type-arg]
    resources = [(url, Resource.from_contents(json.loads((MODELS / path).read_text()))) for url, path in REFS.items()]
    return Registry().with_resources(resources)


REGISTRY = _registry()


# jsonschema checks `date-time` only with the optional rfc3339-validator installed: check it here
# (RFC 3339: a full date, a time, and an offset or Z).
FORMATS = FormatChecker()
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # formats constrain strings only
    if not RFC3339.fullmatch(value):
        return False
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))  # a real date and time (ValueError if not)
    return True


def validator(model: str) -> Draft202012Validator:
    """The model's published schema, its $refs resolved from local copies; formats (date-time) checked."""
    schema = json.loads((MODELS / model / "schema.json").read_text())
    return Draft202012Validator(schema, registry=REGISTRY, format_checker=FORMATS)


def schema_errors(entity: dict[str, Any]) -> list[str]:
    """Every way the entity fails its model's schema (as key-values; `@context` is JSON-LD framing)."""
    body = {k: v for k, v in entity.items() if k != "@context"}
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator(entity["type"]).iter_errors(body)]


# --- fixture rows, by hand ------------------------------------------------------------------

T = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
AIR_ROWS = [
    {
        **{"community_id": COMMUNITY, "day": DAY, "hour_start": T, "device_id": "ENV03", "location": "central-garden"},
        **{"readings": 60, "pm25_avg": 35.5, "pm25_max": 41.0, "pm10_avg": 60.25, "pm10_max": 72.0},
        **{"noise_laeq_db": 55.3, "noise_lamax_db": 71.8, "temperature_avg_c": 12.5, "humidity_avg_pct": 64.0},
    },
    {  # a station whose noise sensor was silent that hour: no NoiseLevelObserved
        **{"community_id": COMMUNITY, "day": DAY, "hour_start": T, "device_id": "ENV04", "location": "playground"},
        **{"readings": 58, "pm25_avg": 20.0, "pm25_max": 22.0, "pm10_avg": 40.0, "pm10_max": 44.0},
        **{"noise_laeq_db": None, "noise_lamax_db": None, "temperature_avg_c": None, "humidity_avg_pct": None},
    },
]
_ASSET = {"community_id": COMMUNITY, "day": DAY, "cover_type": None, "battery_pct": None}
ASSET_ROWS = [
    {
        **_ASSET,
        **{"asset_type": "streetlight", "device_id": "SL001", "state": "dimmed", "reports": 96},
        **{"last_report_at": datetime(2026, 11, 20, 15, 45, tzinfo=UTC), "faults_raised": 1, "faults_cleared": 0},
        **{"fault_types": "lamp_failure", "brightness_pct": 40, "energy_kwh": 1.25},
        **{"tilt_deg_max": None, "water_level_cm_max": None},
    },
    {
        **_ASSET,
        **{"asset_type": "streetlight", "device_id": "SL002", "state": "on", "reports": 96},
        **{"last_report_at": datetime(2026, 11, 20, 15, 50, tzinfo=UTC), "faults_raised": 1, "faults_cleared": 1},
        **{"fault_types": "power_loss", "brightness_pct": 100, "energy_kwh": 2.5},
        **{"tilt_deg_max": None, "water_level_cm_max": None},
    },
    {  # a manhole cover: no Smart Data Model, so no entity
        **{"community_id": COMMUNITY, "day": DAY, "asset_type": "manhole_cover", "device_id": "MH01"},
        **{"cover_type": "sewage", "state": "closed", "reports": 24, "battery_pct": 88, "brightness_pct": None},
        **{"last_report_at": datetime(2026, 11, 20, 15, 0, tzinfo=UTC), "faults_raised": 0, "faults_cleared": 0},
        **{"fault_types": None, "energy_kwh": None, "tilt_deg_max": 1.5, "water_level_cm_max": 20.0},
    },
]
ROOMS = ["1201", "0302"]
_ALARM = {"community_id": COMMUNITY, "day": DAY, "updates": 0, "escalated": False}
ALARM_ROWS = [
    {
        **_ALARM,
        **{"alarm_id": "AL-1", "family": "home-safety", "category": "smoke", "severity": "critical"},
        **{"state": "cleared", "raised_at": datetime(2026, 11, 20, 2, 0, tzinfo=UTC)},
        **{"acknowledged_at": datetime(2026, 11, 20, 2, 1, 30, tzinfo=UTC), "acknowledged_by": "district"},
        **{"cleared_at": datetime(2026, 11, 20, 2, 20, tzinfo=UTC), "response_seconds": 90, "resolution_seconds": 1200},
        **{"building": "12", "unit": "2", "room_no": ROOMS[0]},
    },
    {
        **_ALARM,
        **{"alarm_id": "AL-2", "family": "fence", "category": "fence_intrusion", "severity": "high"},
        **{"state": "raised", "raised_at": datetime(2026, 11, 20, 3, 0, tzinfo=UTC)},
        **{"acknowledged_at": None, "acknowledged_by": None, "cleared_at": None},
        **{"response_seconds": None, "resolution_seconds": None, "building": None, "unit": None, "room_no": None},
    },
    {
        **_ALARM,
        **{"alarm_id": "AL-3", "family": "home-safety", "category": "gas", "severity": "medium"},
        **{"state": "acknowledged", "raised_at": datetime(2026, 11, 20, 4, 0, tzinfo=UTC)},
        **{"acknowledged_at": datetime(2026, 11, 20, 4, 3, tzinfo=UTC), "acknowledged_by": "public_security"},
        **{"cleared_at": None, "response_seconds": 180, "resolution_seconds": None},
        **{"building": "3", "unit": "1", "room_no": ROOMS[1]},
    },
]
PLATES = ["沪AD12345", "沪B7K2M9"]
PASS_ROWS = [
    {  # through the north gate (G1) into the estate: driving north to south
        **{"community_id": COMMUNITY, "day": DAY, "pass_time": datetime(2026, 11, 20, 0, 30, 5, tzinfo=UTC)},
        **{"gate_code": "G1", "direction": "in", "vehicle_type": "resident", "new_energy": True},
        "plate_no": PLATES[0],
    },
    {  # out through the south gate (G2): north to south again; a blue plate, its colour unknown to the feed
        **{"community_id": COMMUNITY, "day": DAY, "pass_time": datetime(2026, 11, 20, 15, 59, 59, tzinfo=UTC)},
        **{"gate_code": "G2", "direction": "out", "vehicle_type": "visitor", "new_energy": False},
        "plate_no": PLATES[1],
    },
]

BUILDING_LEVEL = [f for f in ALARM_ROWS[0] if f not in ("unit", "room_no")]
GRANTS = {
    "district": {
        AIR: dict.fromkeys(AIR_ROWS[0], "keep"),
        ASSETS: dict.fromkeys(ASSET_ROWS[0], "keep"),
        ALARMS: dict.fromkeys(BUILDING_LEVEL, "keep"),
    },
    "public_security": {
        ALARMS: {**dict.fromkeys(ALARM_ROWS[0], "keep"), "room_no": "seal_to"},
        PASSES: {**dict.fromkeys(PASS_ROWS[0], "keep"), "plate_no": "seal_to"},
    },
    # Passes without any plate: what a consumer gets when its policy does not grant the plate.
    "open_data": {PASSES: {f: "keep" for f in PASS_ROWS[0] if f != "plate_no"}},
}


@pytest.fixture(scope="module")
def police_key() -> X25519PrivateKey:
    """The public-security platform's encryption key; the hub only ever has its public half."""
    return X25519PrivateKey.generate()


def _sealed(rows: list[dict[str, Any]], feed: str, field: str, key: X25519PrivateKey) -> list[dict[str, Any]]:
    recipient = Recipient("public_security", "public_security-x25519", key.public_key())
    hub_key = b"\x07" * 32
    return [{**row, field: row[field] and seal(row[field], recipient, hub_key, field, feed=feed)} for row in rows]


def _publish(hub: LiveHub, consumer: str, feed_name: str, rows: list[dict[str, Any]]) -> None:
    feed = load_feeds()[feed_name]
    granted = hub.app.state.hub.policies[consumer].published_fields(feed)
    schema = pa.schema([(name, ARROW[feed.field(name).type]) for name in granted])
    table = pa.Table.from_pylist([{name: row[name] for name in granted} for row in rows], schema=schema)
    publish_table(hub.settings, hub.signing_key, consumer, feed_name, KEY, 1, table)


@pytest.fixture(scope="module")
def std_hub(tmp_path_factory: pytest.TempPathFactory, police_key: X25519PrivateKey) -> Iterator[LiveHub]:
    """A hub whose consumers are granted the standard-format feeds, each with one partition."""
    with running_hub(tmp_path_factory.mktemp("standards")) as hub:
        state = hub.app.state.hub
        for consumer, grants in GRANTS.items():
            policy = state.policies[consumer]
            feeds = {**policy.feeds, **{name: FeedGrant(fields=fields) for name, fields in grants.items()}}
            state.policies = {**state.policies, consumer: policy.model_copy(update={"feeds": feeds})}
        _publish(hub, "district", AIR, AIR_ROWS)
        _publish(hub, "district", ASSETS, ASSET_ROWS)
        _publish(hub, "district", ALARMS, ALARM_ROWS)
        _publish(hub, "public_security", ALARMS, _sealed(ALARM_ROWS, ALARMS, "room_no", police_key))
        _publish(hub, "public_security", PASSES, _sealed(PASS_ROWS, PASSES, "plate_no", police_key))
        _publish(hub, "open_data", PASSES, PASS_ROWS)
        yield hub


def fetch(hub: LiveHub, consumer: str, feed: str, fmt: str, **params: Any) -> requests.Response:
    """A signed GET of the feed's records in `fmt`, its hub signature verified."""
    path = f"/v1/feeds/{feed}/records"
    response = send(hub.signed(path, hub.identities[consumer], {"format": fmt, **params}))
    verify_response(response, hub.jwks)
    return response


def by_type(entities: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for entity in entities:
        grouped.setdefault(entity["type"], []).append(entity)
    return grouped


# --- NGSI-LD ---------------------------------------------------------------------------------

ENV_CONTEXT = "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld"
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
PLACE = {
    "location": {"type": "Point", "coordinates": [121.4371, 31.2412]},
    "address": {
        "addressCountry": "CN",
        "addressRegion": "上海市",
        "addressLocality": "普陀区",
        "district": "长寿路街道",
    },
    "areaServed": "音乐广场",
}


def test_air_quality_hours_are_air_quality_and_noise_observations(std_hub: LiveHub) -> None:
    response = fetch(std_hub, "district", AIR, "ngsi-ld")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/ld+json")
    entities = response.json()
    assert [e["id"] for e in entities] == [
        "urn:ngsi-ld:AirQualityObserved:music-square:ENV03:2026-11-20T00-00-00Z",
        "urn:ngsi-ld:NoiseLevelObserved:music-square:ENV03:2026-11-20T00-00-00Z",
        "urn:ngsi-ld:AirQualityObserved:music-square:ENV04:2026-11-20T00-00-00Z",
    ]
    air, noise, quiet = entities
    assert air == {
        "id": air["id"],
        "type": "AirQualityObserved",
        "dateObserved": "2026-11-20T00:00:00Z",
        **PLACE,
        "name": "central-garden",
        "refDevice": "urn:ngsi-ld:Device:music-square:ENV03",
        "dataProvider": "Neuron Hub",
        "typeofLocation": "outdoor",
        "pm25": 35.5,
        "pm10": 60.25,
        "temperature": 12.5,
        "relativeHumidity": 0.64,
        "@context": [ENV_CONTEXT, CORE_CONTEXT],
    }
    assert (noise["dateObservedFrom"], noise["dateObservedTo"]) == ("2026-11-20T00:00:00Z", "2026-11-20T01:00:00Z")
    assert (noise["LAeq"], noise["LAmax"]) == (55.3, 71.8)
    assert "temperature" not in quiet and "relativeHumidity" not in quiet  # null readings are left out
    for entity in entities:
        assert schema_errors(entity) == [], entity["type"]


def test_streetlights_are_streetlight_entities_and_covers_are_left_out(std_hub: LiveHub) -> None:
    entities = fetch(std_hub, "district", ASSETS, "ngsi-ld").json()
    assert [(e["id"], e["status"], e["powerState"], e["illuminanceLevel"]) for e in entities] == [
        # a lamp failure raised and not cleared that day; dimmed is the model's "low"
        ("urn:ngsi-ld:Streetlight:music-square:SL001", "defectiveLamp", "low", 0.4),
        # its power loss was cleared the same day
        ("urn:ngsi-ld:Streetlight:music-square:SL002", "ok", "on", 1.0),
    ]
    assert entities[0]["observationDateTime"] == "2026-11-20T15:45:00Z"
    assert entities[0]["refDevice"] == ["urn:ngsi-ld:Device:music-square:SL001"]
    for entity in entities:
        assert schema_errors(entity) == []


def test_alarms_are_alerts_at_the_level_the_policy_grants(std_hub: LiveHub, police_key: X25519PrivateKey) -> None:
    district = fetch(std_hub, "district", ALARMS, "ngsi-ld").json()
    assert [(a["id"], a["category"], a.get("subCategory"), a["severity"]) for a in district] == [
        ("urn:ngsi-ld:Alert:music-square:AL-1", "security", "buildingFire", "critical"),
        ("urn:ngsi-ld:Alert:music-square:AL-2", "security", "suspiciousAction", "high"),
        ("urn:ngsi-ld:Alert:music-square:AL-3", "security", None, "medium"),  # no model subcategory for gas
    ]
    smoke = district[0]
    assert (smoke["dateIssued"], smoke["validFrom"], smoke["validTo"]) == (
        "2026-11-20T02:00:00Z",
        "2026-11-20T02:00:00Z",
        "2026-11-20T02:20:00Z",
    )
    assert smoke["alertSource"] == "urn:ngsi-ld:AlarmSystem:music-square:home-safety"
    assert smoke["data"] == {
        **{"category": "smoke", "family": "home-safety", "state": "cleared"},
        **{"acknowledgedAt": "2026-11-20T02:01:30Z", "acknowledgedBy": "district", "clearedAt": "2026-11-20T02:20:00Z"},
        **{"responseSeconds": 90, "resolutionSeconds": 1200, "escalated": False, "updates": 0, "building": "12"},
    }
    assert "validTo" not in district[1]  # not cleared yet
    # The district's policy stops at the building: no unit, no room, in any form.
    assert all("unit" not in a["data"] and "roomNo" not in a["data"] for a in district)
    police = fetch(std_hub, "public_security", ALARMS, "ngsi-ld").json()
    assert police[0]["data"]["unit"] == "2"
    room = police[0]["data"]["roomNo"]
    assert open_sealed(room, police_key, "room_no", consumer="public_security", feed=ALARMS) == ROOMS[0]
    assert find_leaks(ROOMS, [("alerts", json.dumps(police, ensure_ascii=False))]) == []
    for entity in [*district, *police]:
        assert schema_errors(entity) == []


def test_entities_are_deterministic_and_page_with_the_cursor(std_hub: LiveHub) -> None:
    whole = fetch(std_hub, "district", ALARMS, "ngsi-ld")
    assert fetch(std_hub, "district", ALARMS, "ngsi-ld").content == whole.content  # same rows, same bytes
    first = fetch(std_hub, "district", ALARMS, "ngsi-ld", limit=2)
    rest = fetch(std_hub, "district", ALARMS, "ngsi-ld", cursor=first.headers["Neuron-Next-Cursor"])
    assert first.json() + rest.json() == whole.json()


def test_every_entity_type_validates_through_the_client(std_hub: LiveHub) -> None:
    seen: dict[str, int] = {}
    with std_hub.client("district") as client:
        for feed in (AIR, ASSETS, ALARMS):
            # (the client has named methods for ndjson and csv only; _records is what they use)
            response = client._records(feed, None, None, "ngsi-ld", "application/ld+json")
            for entity in response.json():
                assert schema_errors(entity) == [], (entity["type"], schema_errors(entity))
                assert re.fullmatch(rf"urn:ngsi-ld:{entity['type']}:[\w\-.:]+", entity["id"], re.ASCII)
                seen[entity["type"]] = seen.get(entity["type"], 0) + 1
    assert seen == {"AirQualityObserved": 2, "NoiseLevelObserved": 1, "Streetlight": 2, "Alert": 3}


@pytest.mark.slow
def test_what_the_real_marts_and_publisher_give_renders_valid_entities(tmp_path: Path) -> None:
    # The device feeds' hand-written staging fixtures (tests/warehouse/marts), built and
    # published for real under config/policies: Parquet as DuckDB and the publisher write it.
    settings = devices.new_hub(tmp_path / "hub")
    police = X25519PrivateKey.generate()
    register_consumer(settings, "public_security", public_pem(Ed25519PrivateKey.generate()))
    register_encryption_key(settings, "public_security", police.public_key().public_bytes(*PEM_PUBLIC))
    for stream, rows in [
        ("environment", devices.ENVIRONMENT),
        ("streetlights", devices.STREETLIGHTS),
        ("manhole_covers", devices.MANHOLE_COVERS),
        ("elderly_care", devices.ELDERLY_CARE),
        ("platform_consent", devices.PLATFORM_CONSENT),
        ("alarm_lifecycle", devices.ALARM_EVENTS),
    ]:
        devices.stage(settings, stream, "w1", rows)
    pipeline.build(settings)
    pipeline.publish(settings, feeds=[AIR, ASSETS, ALARMS])
    seen: dict[str, int] = {}
    for consumer, feed in [("district", AIR), ("district", ASSETS), ("district", ALARMS), ("public_security", ALARMS)]:
        for table in devices.consumer_partitions(settings, consumer, feed).values():
            for entity in json.loads(render_ngsi([table], table.column_names, load_feeds()[feed])):
                assert schema_errors(entity) == [], (entity["id"], schema_errors(entity))
                seen[entity["type"]] = seen.get(entity["type"], 0) + 1
    assert set(seen) == {"AirQualityObserved", "NoiseLevelObserved", "Streetlight", "Alert"}


def test_the_schemas_do_catch_a_broken_entity(std_hub: LiveHub) -> None:
    # The validation above is not vacuous: the offline registry resolves the common definitions.
    light = fetch(std_hub, "district", ASSETS, "ngsi-ld").json()[0]
    assert schema_errors({**light, "status": "flickering"})
    assert schema_errors({**light, "location": {"type": "Point"}})  # from common-schema.json
    assert schema_errors({k: v for k, v in light.items() if k != "status"})
    alert = fetch(std_hub, "district", ALARMS, "ngsi-ld").json()[0]
    assert schema_errors({**alert, "severity": "urgent"})  # from Alert/alert-schema.json
    assert schema_errors({**alert, "dateIssued": "yesterday"})  # date-time is checked
    assert schema_errors({**alert, "dateIssued": "2026-11-20T02:00:00"})  # without its offset
    assert schema_errors({**alert, "dateIssued": "2026-02-30T02:00:00Z"})  # no such day


# --- GA/T 1400 (VIID) ----------------------------------------------------------------------

REQUIRED = ["MotorVehicleID", "InfoKind", "SourceID", "DeviceID", "VehicleColor"]
BOX = ["LeftTopX", "LeftTopY", "RightBtmX", "RightBtmY"]  # required for automatic capture (InfoKind 1)


def test_vehicle_passes_are_viid_motor_vehicles_with_the_plate_sealed(
    std_hub: LiveHub, police_key: X25519PrivateKey
) -> None:
    response = fetch(std_hub, "public_security", PASSES, "viid")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    vehicles = response.json()["MotorVehicleListObject"]["MotorVehicleObject"]
    assert len(vehicles) == 2
    for vehicle in vehicles:
        assert all(vehicle.get(name) not in (None, "") for name in REQUIRED + BOX), vehicle
        assert vehicle["InfoKind"] == 1 and vehicle["HasPlate"] == "1" and vehicle["VehicleColor"] == "99"
        assert re.fullmatch(r"\d{20}", vehicle["DeviceID"])
        assert re.fullmatch(r"\d{41}", vehicle["SourceID"]) and vehicle["SourceID"].startswith(vehicle["DeviceID"])
        assert re.fullmatch(r"\d{48}", vehicle["MotorVehicleID"])
        assert vehicle["MotorVehicleID"].startswith(vehicle["SourceID"])
        assert vehicle["SourceID"][22:36] == vehicle["PassTime"]
        assert not any(key.startswith("StorageUrl") or key == "SubImageList" for key in vehicle)  # no images
    entering, leaving = vehicles
    # Shanghai time, yyyyMMddHHmmss: 00:30:05Z is 08:30:05, 15:59:59Z is 23:59:59 the same day.
    assert (entering["PassTime"], leaving["PassTime"]) == ("20261120083005", "20261120235959")
    # Into the north gate and out of the south gate both drive north to south (4).
    assert (entering["Direction"], leaving["Direction"]) == ("4", "4")
    # A new-energy (green) plate: colour 9, class 52; the other plate's colour is not in the feed.
    assert (entering["PlateColor"], entering["PlateClass"]) == ("9", "52")
    assert "PlateColor" not in leaving and "PlateClass" not in leaving
    assert entering["DeviceID"] != leaving["DeviceID"]  # two gates (and entry and exit cameras)
    assert len({v["MotorVehicleID"] for v in vehicles}) == 2
    # Only the platform's own key opens the plate; the raw plate is nowhere in the body.
    opened = [
        open_sealed(v["PlateNoSealed"], police_key, "plate_no", consumer="public_security", feed=PASSES)
        for v in vehicles
    ]
    assert opened == PLATES
    assert find_leaks(PLATES, [("viid", response.content.decode())]) == []


def test_a_policy_without_the_plate_gives_records_without_plate_no(std_hub: LiveHub) -> None:
    response = fetch(std_hub, "open_data", PASSES, "viid")
    vehicles = response.json()["MotorVehicleListObject"]["MotorVehicleObject"]
    assert len(vehicles) == 2 and all("PlateNo" not in v and v["HasPlate"] == "1" for v in vehicles)
    assert find_leaks(PLATES, [("viid", response.content.decode())]) == []


def test_viid_through_the_client(std_hub: LiveHub) -> None:
    with std_hub.client("public_security") as client:
        response = client._records(PASSES, None, 1, "viid", "application/json")
        first = response.json()["MotorVehicleListObject"]["MotorVehicleObject"]
        cursor = response.headers["Neuron-Next-Cursor"]
        rest = client._records(PASSES, cursor, None, "viid", "application/json").json()
    assert [v["PassTime"] for v in first + rest["MotorVehicleListObject"]["MotorVehicleObject"]] == [
        "20261120083005",
        "20261120235959",
    ]


def test_viid_codes_follow_what_the_row_says_and_claim_nothing_it_does_not() -> None:
    # Rendered directly: rows a policy or a future feed version might give (a plate colour, no
    # time, a gate whose side is not known).
    feed = load_feeds()[PASSES]
    rows = [
        {"community_id": COMMUNITY, "day": DAY, "gate_code": "G1", "direction": "out", "plate_color": "blue"},
        {"community_id": COMMUNITY, "day": DAY, "gate_code": "G9", "direction": "in", "plate_color": "white"},
        {"community_id": COMMUNITY, "day": DAY, "gate_code": "G2", "direction": "in", "plate_color": "yellow"},
    ]
    table = pa.Table.from_pylist(rows)
    body = json.loads(render_viid([table], table.column_names, feed))
    blue, white, yellow = body["MotorVehicleListObject"]["MotorVehicleObject"]
    assert (blue["Direction"], blue["PlateColor"], blue["PlateClass"]) == ("3", "5", "02")  # out of the north gate
    assert "Direction" not in white and white["PlateColor"] == "2" and "PlateClass" not in white
    assert (yellow["Direction"], yellow["PlateColor"], yellow["PlateClass"]) == ("3", "6", "01")  # into the south gate
    for vehicle in (blue, white, yellow):
        assert "PassTime" not in vehicle and "PlateNo" not in vehicle
        assert vehicle["SourceID"][22:36] == "20261120000000"  # no time granted: dated by the day


def test_a_raw_plate_never_leaves_even_if_one_reached_the_renderer() -> None:
    feed = load_feeds()[PASSES]
    table = pa.Table.from_pylist([{**PASS_ROWS[0]}])
    with pytest.raises(IntegrityError, match="raw plate") as raised:
        render_viid([table], table.column_names, feed)
    assert PLATES[0] not in str(raised.value)


# --- offered only where they fit --------------------------------------------------------------


@pytest.mark.parametrize(
    ("consumer", "feed", "fmt", "offered"),
    [
        ("public_security", PASSES, "ngsi-ld", "ndjson, csv, parquet, viid"),
        ("district", AIR, "viid", "ndjson, csv, parquet, ngsi-ld"),
        ("district", "traffic.vehicle_flow_hourly", "ngsi-ld", "ndjson, csv, parquet"),
        ("district", "traffic.vehicle_flow_hourly", "viid", "ndjson, csv, parquet"),
    ],
)
def test_a_format_the_feed_does_not_fit_is_406(
    std_hub: LiveHub, consumer: str, feed: str, fmt: str, offered: str
) -> None:
    response = fetch(std_hub, consumer, feed, fmt)
    assert (response.status_code, response.json()) == (
        406,
        {"detail": f"feed {feed} is not offered as {fmt}; it is offered as {offered}"},
    )
    with std_hub.client(consumer) as client, pytest.raises(HubRefused) as refused:
        client._records(feed, None, None, fmt, "application/json")
    assert refused.value.status_code == 406


def test_a_feed_not_granted_stays_404_in_any_format(std_hub: LiveHub) -> None:
    assert fetch(std_hub, "district", PASSES, "viid").status_code == 404
    assert fetch(std_hub, "open_data", ALARMS, "ngsi-ld").status_code == 404
