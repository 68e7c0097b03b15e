"""What the upper VIID platform checks in a MotorVehicleObject (GA/T 1400.3 A.11) and a
SubscribeNotificationObject (A.20), written from the standard's tables as summarised in
docs/standards/GAT1400-cascade.md §4.2, §5 and §6 — not from the hub's renderer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

DIGITS = {n: re.compile(rf"[0-9]{{{n}}}") for n in (20, 41, 48)}
COLORS = {str(n) for n in range(1, 14)} | {"14", "99"}  # sources differ on 14 vs 99 for "other"
MOTOR_VEHICLE_SUBTYPE = "02"
SEALED_PLATE = "PlateNoSealed"  # the Neuron lower platform's extra member (see vehicle_problems)


def _text(value: Any) -> str | None:
    # Code fields arrive as strings or numbers depending on the platform: both are read.
    if isinstance(value, bool) or value is None:
        return None
    return str(value) if isinstance(value, str | int) else None


def valid_time(value: Any, millis: bool = False) -> bool:
    """`YYYYMMDDhhmmss` (local time), optionally with 3 millisecond digits."""
    text = _text(value)
    if text is None or not re.fullmatch(r"[0-9]{14}([0-9]{3})?" if millis else r"[0-9]{14}", text):
        return False
    try:
        datetime.strptime(text[:14], "%Y%m%d%H%M%S")
    except ValueError:
        return False
    return True


def vehicle_problems(
    vehicle: Any, image_required: bool, open_plate: Callable[[str], str | None] | None = None
) -> list[str]:
    """Why a MotorVehicleObject is malformed (field names only, never values); [] when valid."""
    if not isinstance(vehicle, dict):
        return ["MotorVehicleObject: not an object"]
    problems: list[str] = []

    def need(field: str, ok: bool) -> None:
        if not ok:
            problems.append(field)

    vid, source = _text(vehicle.get("MotorVehicleID")), _text(vehicle.get("SourceID"))
    need("MotorVehicleID", vid is not None and DIGITS[48].fullmatch(vid) is not None)
    need("SourceID", source is not None and DIGITS[41].fullmatch(source) is not None)
    if vid and source and not problems:
        # ImageCntObjectIdType = SourceID + sub-type (02 motor vehicle) + 5-digit serial.
        need("MotorVehicleID", vid.startswith(source) and vid[41:43] == MOTOR_VEHICLE_SUBTYPE)
    kind = vehicle.get("InfoKind")
    need("InfoKind", isinstance(kind, int) and not isinstance(kind, bool) and kind in (0, 1, 2))
    automatic = kind == 1
    for field in ("DeviceID", "TollgateID"):
        value = _text(vehicle.get(field))
        if value is not None or (field == "DeviceID" and automatic):
            need(field, value is not None and DIGITS[20].fullmatch(value) is not None)
    if automatic:
        # R/O: required for automatic capture. The image may be waived by agreement (no images leave the hub).
        if image_required:
            need("StorageUrl1", bool(_text(vehicle.get("StorageUrl1"))))
        for field in ("LeftTopX", "LeftTopY", "RightBtmX", "RightBtmY"):
            value = vehicle.get(field)
            need(field, isinstance(value, int) and not isinstance(value, bool) and value >= 0)
    need("VehicleColor", _text(vehicle.get("VehicleColor")) in COLORS)
    if "PlateColor" in vehicle:
        need("PlateColor", _text(vehicle.get("PlateColor")) in COLORS)
    if "PlateClass" in vehicle:
        plate_class = _text(vehicle.get("PlateClass"))
        need("PlateClass", plate_class is not None and re.fullmatch(r"[0-9]{2}", plate_class) is not None)
    if "PassTime" in vehicle:
        need("PassTime", valid_time(vehicle.get("PassTime")))
    if "Direction" in vehicle:
        need("Direction", (_text(vehicle.get("Direction")) or "") in {"1", "2", "3", "4", "5", "6", "7", "8", "9"})
    if "PlateNo" in vehicle:
        plate = _text(vehicle.get("PlateNo"))
        need("PlateNo", plate is not None and 0 < len(plate) <= 15)  # string(15), whatever it holds
    if SEALED_PLATE in vehicle:
        # Not a member of A.11: the lower platform's own, carrying a plate sealed to this platform's
        # key (the standard names no extension member; unknown members are kept, not refused). The
        # key holder opens it; one that does not open is a wrong object.
        sealed = _text(vehicle.get(SEALED_PLATE))
        if open_plate is not None:
            opened = open_plate(sealed) if sealed is not None else None
            need(SEALED_PLATE, opened is not None and 0 < len(opened) <= 15)
    return problems


def notification_problems(notification: Any) -> list[str]:
    """Why a SubscribeNotificationObject is malformed apart from its objects (field names only)."""
    if not isinstance(notification, dict):
        return ["SubscribeNotificationObject: not an object"]
    problems = []
    nid = _text(notification.get("NotificationID"))
    if nid is None or not 0 < len(nid) <= 33:
        problems.append("NotificationID")
    sid = _text(notification.get("SubscribeID"))
    if sid is None or not 0 < len(sid) <= 33:
        problems.append("SubscribeID")
    if "TriggerTime" in notification and not valid_time(notification.get("TriggerTime")):
        problems.append("TriggerTime")
    info = notification.get("InfoIDs")
    if info is not None and (not isinstance(info, str) or len(info) > 1024):
        problems.append("InfoIDs")
    return problems


def vehicles_of(notification: dict[str, Any]) -> list[Any] | None:
    """The MotorVehicleObject list a notification carries ([] when it carries none), None if malformed."""
    wrapper = notification.get("MotorVehicleObjectList")
    if wrapper is None:
        return []
    if not isinstance(wrapper, dict) or not isinstance(wrapper.get("MotorVehicleObject", []), list):
        return None
    return list(wrapper.get("MotorVehicleObject", []))
