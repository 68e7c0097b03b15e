"""Alarms for consumers' NGSI-LD brokers: a destination kind beside the MQTT upstreams.

For each `[[push.ngsi_ld]]` consumer that takes alerts, the relay writes the alarm's state after
each lifecycle event into its outbox (destination `ngsi-ld:<consumer>`) in the same group commit
as everything else; `neuron push` reads those rows, renders them as Alert entities under the
consumer's policy and deletes them once its broker took them (peers/ngsi_ld/alerts.py). The row
holds what the `safety.alarms` feed would: no room, no device, nothing sealed; it never leaves
the control database as it is.
"""

from __future__ import annotations

import json
from typing import Any

from relay.lifecycle import LifecycleEvent
from warehouse.alarm_history import ALARM_STATE_FIELDS

TOPIC = "ngsi-ld/Alert"  # the outbox's topic column; not an MQTT topic


def alert_outboxes(settings: Any) -> list[str]:
    """The outbox destinations of the consumers whose brokers take alerts."""
    pushes = getattr(getattr(settings, "push", None), "ngsi_ld", None) or []
    return [push.alert_outbox for push in pushes if push.alerts]


def alert_state(event: LifecycleEvent) -> str:
    """The alarm as it is after `event`, as JSON (times ISO 8601, UTC)."""
    alarm = event.alarm
    row = {name: getattr(alarm, name) for name in ALARM_STATE_FIELDS}
    return json.dumps({k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}, sort_keys=True)
