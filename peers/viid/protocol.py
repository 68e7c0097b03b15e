"""GA/T 1400.4 conventions the cascade needs: media type, times, status objects, business ids.

Summarised from the standard's public implementations in docs/standards/GAT1400-cascade.md
(§2 transport, §4 objects, §6 ids).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

VIID_JSON = "application/VIID+JSON"
LOCAL = ZoneInfo("Asia/Shanghai")  # VIID times are local, without a zone designator
NOTIFY_PATH = "/VIID/SubscribeNotifications"
OK, OTHER, INVALID_OPERATION, BAD_JSON, BAD_CONTENT = 0, 1, 4, 7, 8
MOTOR_VEHICLES = "13"  # SubscribeDetail code
# SubscribeStatus (A.19): 0 active, 1 cancelled, 2 expired.
ACTIVE, CANCELLED, EXPIRED = 0, 1, 2
# Sub-types of a BusinessObjectIdType [unverified: recalled list, no source could be read]:
# 04 subscription, 06 subscription notification.
NOTIFICATION_SUBTYPE = "06"


def viid_time(moment: datetime) -> str:
    """`YYYYMMDDhhmmss`, Shanghai time."""
    return moment.astimezone(LOCAL).strftime("%Y%m%d%H%M%S")


def parse_viid_time(text: Any) -> datetime | None:
    """A `YYYYMMDDhhmmss[SSS]` local time as an aware datetime; None when absent or malformed."""
    if not isinstance(text, str | int) or isinstance(text, bool):
        return None
    raw = str(text)
    if len(raw) not in (14, 17) or not raw.isdigit():
        return None
    try:
        return datetime.strptime(raw[:14], "%Y%m%d%H%M%S").replace(tzinfo=LOCAL)
    except ValueError:
        return None


def status_object(url: str, code: int, text: str, ident: str = "", now: datetime | None = None) -> dict[str, Any]:
    """A ResponseStatusObject (A.26)."""
    return {
        "RequestURL": url,
        "StatusCode": code,
        "StatusString": text,
        "Id": ident,
        "LocalTime": viid_time(now or datetime.now(LOCAL)),
    }


def status_code(obj: Any) -> int | None:
    """StatusCode of a ResponseStatusObject: platforms send it as a number or a string; None if neither."""
    value = obj.get("StatusCode") if isinstance(obj, dict) else None
    if isinstance(value, bool):
        return None
    try:
        return int(value) if isinstance(value, int | str) else None
    except ValueError:
        return None


def status_list(body: Any) -> list[dict[str, Any]]:
    """The status objects of a reply, single (`ResponseStatusObject`) or listed (`ResponseStatusListObject`)."""
    if not isinstance(body, dict):
        return []
    listed = body.get("ResponseStatusListObject")
    if isinstance(listed, dict):
        items = listed.get("ResponseStatusObject")
        if isinstance(items, list):
            return [i for i in items if isinstance(i, dict)]
        return [items] if isinstance(items, dict) else []
    single = body.get("ResponseStatusObject")
    return [single] if isinstance(single, dict) else []


def notification_id(unit_code: str, created: datetime, serial: int) -> str:
    """A BusinessObjectIdType (33): 12-digit unit code + sub-type 06 + 14-digit time + 5-digit serial.

    The composition is [unverified] (GAT1400-cascade.md §6: peers check only the length). It is
    fixed when the notification enters the outbox and never recomputed, so a retry carries the same
    id and the upper can tell a redelivery from a new notification.
    """
    return unit_code[:12] + NOTIFICATION_SUBTYPE + viid_time(created) + f"{serial % 100_000:05d}"
