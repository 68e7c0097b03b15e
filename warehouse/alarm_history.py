"""The relay's alarm history for the admin console: one row per alarm, newest first, building level."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from kernel.settings import Settings
from warehouse.control import engine_for
from warehouse.models import RelayAlarm

# An alarm's state as the `safety.alarms` feed carries it: columns of RelayAlarm, no room, no
# device, nothing sealed. The one list of them: the relay's NGSI-LD alert outbox writes these
# (relay/alert_outbox.py), and the console shows them down to the building.
ALARM_STATE_FIELDS = (
    "alarm_id",
    "community_id",
    "family",
    "category",
    "severity",
    "state",
    "raised_at",
    "acknowledged_at",
    "acknowledged_by",
    "cleared_at",
    "escalated",
    "updates",
    "building",
    "unit",
)
BELOW_BUILDING = frozenset({"unit"})  # what the console leaves out: it shows what the district sees
CONSOLE_FIELDS = tuple(name for name in ALARM_STATE_FIELDS if name not in BELOW_BUILDING)


def alarm_list(settings: Settings, since: datetime | None = None, limit: int = 500) -> list[dict[str, Any]]:
    """Alarms raised at or after `since` (all when None), newest first, at most `limit`.

    Building level only: no unit, room or device (the console shows what the district sees).
    """
    columns = [getattr(RelayAlarm, name) for name in CONSOLE_FIELDS]
    query = select(*columns).order_by(RelayAlarm.raised_at.desc(), RelayAlarm.alarm_id).limit(max(0, limit))
    if since is not None:
        query = query.where(RelayAlarm.raised_at >= since)
    with engine_for(settings.control_url).connect() as conn:
        rows = [dict(row) for row in conn.execute(query).mappings()]
    for row in rows:
        acked, raised = row["acknowledged_at"], row["raised_at"]
        row["response_seconds"] = (acked - raised).total_seconds() if acked is not None else None
        row["escalated"] = bool(row["escalated"])
    return rows
