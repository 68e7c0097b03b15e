"""Per-product decoders: a carrier message → the readings and alarm of one device report, named as
the hub's contracts name them (`home_safety`, `manhole_covers`).

A decoder raises `DecodeError` naming the field it could not read (never its value); the processor
lands such a message under `_rejects` with that reason, so nothing acknowledged is dropped silently.
Products are bound to decoders in `[inbox].products` (carrier, productId → decoder name).
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class DecodeError(ValueError):
    """A message a decoder cannot read; the text names the field."""


@dataclass(frozen=True)
class Reading:
    """One decoded device report."""

    event_ms: int  # the report's time (ms since the epoch)
    values: dict[str, Any] = field(default_factory=dict)  # contract fields: battery_pct, gas_lel_pct, …
    alarm: str | None = None  # the contract's alarm_type this report raises; None: normal


def _number(container: dict[str, Any], name: str, what: str) -> float:
    value = container.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DecodeError(f"{what}.{name} is missing or not a number")
    return value


def _battery(value: float) -> int | None:
    # Outside 0-100 is a firmware's "unknown": left empty rather than quarantined downstream.
    return int(value) if 0 <= value <= 100 else None


def ctwing_time(message: dict[str, Any]) -> int:
    # `timestamp` is the platform's receive time (ms); these products carry no device clock, so it is
    # the event time too (ambiguous in the sources: we chose the platform time over arrival at the hub).
    ts = message.get("timestamp")
    if isinstance(ts, bool) or not isinstance(ts, int) or ts <= 0:
        raise DecodeError("timestamp is missing or not milliseconds")
    return ts


def ctwing_smoke_servicedata(message: dict[str, Any]) -> Reading:
    """Object-model smoke detector: payload.serviceData.Alarm_Status (2 alarm, 0 normal), Battery_Level.

    Alarm_Status other than 0 and 2 (seen as 1 in some integrations, undocumented: self-test or
    fault) is read as "no smoke" — we chose not to raise a smoke alarm on an undocumented value."""
    payload = message.get("payload")
    data = payload.get("serviceData") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        raise DecodeError("payload.serviceData is missing")
    status = _number(data, "Alarm_Status", "payload.serviceData")
    values: dict[str, Any] = {"smoke_obscuration_pct": None}
    if "Battery_Level" in data:
        values["battery_pct"] = _battery(_number(data, "Battery_Level", "payload.serviceData"))
    return Reading(ctwing_time(message), values, "smoke" if status == 2 else None)


GAS_FRAME = struct.Struct(">BBHBBbB")  # AA | kind | %LEL×10 | level | battery % | RSRP | checksum


def ctwing_gas_frame(message: dict[str, Any]) -> Reading:
    """Transparent gas detector: base64 payload.APPdata, the vendor's 8-byte frame (see
    docs/standards/carrier-iot-push.md §4): level 1 or 2 raises a gas alarm."""
    payload = message.get("payload")
    app = payload.get("APPdata") if isinstance(payload, dict) else None
    if not isinstance(app, str):
        raise DecodeError("payload.APPdata is missing")
    try:
        frame = base64.b64decode(app, validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError("payload.APPdata is not Base64") from None
    if len(frame) != GAS_FRAME.size:
        raise DecodeError("payload.APPdata frame has the wrong length")
    head, _kind, lel10, level, battery, _rsrp, check = GAS_FRAME.unpack(frame)
    if head != 0xAA:
        raise DecodeError("payload.APPdata frame header is not 0xAA")
    if sum(frame[:-1]) % 256 != check:
        raise DecodeError("payload.APPdata frame checksum does not match")
    lel = lel10 / 10
    if lel > 100:
        raise DecodeError("payload.APPdata %LEL is out of range")
    values = {"gas_lel_pct": lel, "smoke_obscuration_pct": None, "battery_pct": _battery(battery)}
    return Reading(ctwing_time(message), values, "gas" if level >= 1 else None)


COVER_STATES = {0: "closed", 1: "open", 2: "tilted"}
COVER_ALARMS = {"open": "open", "tilted": "tilt"}


def onenet_manhole_datapoints(points: list[dict[str, Any]]) -> Reading:
    """Manhole cover datapoints sharing one (dev_id, at): cover_state (0 closed, 1 open, 2 tilted),
    tilt_angle (°), battery (%); rsrp and unknown datastreams are not contract fields and are left out."""
    at = points[0].get("at")
    if isinstance(at, bool) or not isinstance(at, int) or at <= 0:
        raise DecodeError("msg.at is missing or not milliseconds")
    values: dict[str, Any] = {}
    alarm = None
    for p in points:
        ds, v = p.get("ds_id"), p.get("value")
        if ds == "cover_state":
            if v not in COVER_STATES:
                raise DecodeError("msg.value of cover_state is not 0, 1 or 2")
            values["cover_state"] = COVER_STATES[v]
            alarm = COVER_ALARMS.get(values["cover_state"])
        elif ds == "tilt_angle":
            values["tilt_deg"] = _number(p, "value", "msg")
        elif ds == "battery":
            values["battery_pct"] = _battery(_number(p, "value", "msg"))
    return Reading(at, values, alarm)


CtwingDecoder = Callable[[dict[str, Any]], Reading]
OnenetDecoder = Callable[[list[dict[str, Any]]], Reading]
CTWING_DECODERS: dict[str, CtwingDecoder] = {
    "ctwing-smoke-servicedata": ctwing_smoke_servicedata,
    "ctwing-gas-frame": ctwing_gas_frame,
}
ONENET_DECODERS: dict[str, OnenetDecoder] = {"onenet-manhole-datapoints": onenet_manhole_datapoints}
DECODERS = {**CTWING_DECODERS, **ONENET_DECODERS}
