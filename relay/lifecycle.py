"""The alarm lifecycle: raised → updated → acknowledged → (escalated) → cleared, in memory.

Pure logic over the relay's open alarms; the service persists what it returns. A device
alarm is keyed by (device, category): a raise while that alarm is open, or within the flap
window after it cleared (by the device's clock), continues it as `updated`, so a flapping
detector is one alarm with updates instead of a flood. Consumers acknowledge; an alarm
neither acknowledged nor cleared by its deadline (the relay's injectable clock) escalates
once, one severity step up.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from relay.alarms import DeviceAlarm, severity_max, severity_up

log = logging.getLogger(__name__)

OPEN_STATES = ("raised", "updated", "escalated", "acknowledged")


@dataclass
class Alarm:
    """One alarm's current state (mirrors the `relay_alarms` row)."""

    alarm_id: str
    community_id: str
    family: str
    category: str
    device_id: str  # as stored: the hub's token for an in-home device
    severity: str
    state: str
    building: str | None
    unit: str | None
    room_no: str | None  # encrypted (relay/rooms.py); the raw room is in `raw`, memory only
    detected_at: datetime
    raised_at: datetime
    last_event_time: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    cleared_at: datetime | None = None
    deadline_at: datetime | None = None
    escalated: bool = False
    updates: int = 0
    events: int = 0
    # An in-home device's household, as the hub's staging token (consent is recorded by it).
    household: str | None = None
    # Entitled consumers' sealed identifiers ({upstream: {field: sealed}}), stored with the alarm.
    sealed: dict[str, dict[str, str]] = field(default_factory=dict, compare=False)
    # Raw identifiers, in memory only, for sealing to entitled consumers (after a restart, `sealed`
    # stands in for them).
    raw: dict[str, str] = field(default_factory=dict, compare=False)
    readings: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.device_id, self.category)

    def row(self) -> dict[str, Any]:
        """The `relay_alarms` row."""
        row = {k: v for k, v in self.__dict__.items() if k not in ("raw", "readings")}
        row["sealed"] = json.dumps(self.sealed, sort_keys=True) if self.sealed else None
        return row

    def snapshot(self) -> Alarm:
        """A copy as the alarm is now (what `dataclasses.replace` gives, at a tenth of its cost)."""
        copy = object.__new__(Alarm)
        copy.__dict__.update(self.__dict__)
        return copy


@dataclass(frozen=True)
class LifecycleEvent:
    """One transition: the alarm as it is after it, who caused it and when."""

    event_id: str
    alarm: Alarm  # a snapshot
    state: str
    event_time: datetime
    actor: str
    recorded_at: datetime

    def row(self) -> dict[str, Any]:
        """The `relay_lifecycle` row."""
        a = self.alarm
        return {
            "event_id": self.event_id,
            "alarm_id": a.alarm_id,
            "community_id": a.community_id,
            "family": a.family,
            "category": a.category,
            "severity": a.severity,
            "state": self.state,
            "building": a.building,
            "unit": a.unit,
            "room_no": a.room_no,
            "device_id": a.device_id,
            "household": a.household,
            "detected_at": a.detected_at,
            "event_time": self.event_time,
            "actor": self.actor,
            "recorded_at": self.recorded_at,
        }


def alarm_id(key: bytes, alarm: DeviceAlarm) -> str:
    """An alarm's id: keyed (HMAC-SHA256, relay/alarms.py relay_id_key), because it is made
    from the raw in-home device id and travels to the district and public security."""
    text = f"{alarm.community_id}\x1f{alarm.family}\x1f{alarm.device_id}\x1f{alarm.source_alarm_id}"
    return "ALM" + hmac.digest(key, text.encode(), "sha256").hex()[:21].upper()


class Lifecycles:
    """Every open (or recently cleared) alarm, and the transitions that change them."""

    def __init__(
        self,
        deadline_for: Callable[[str], float],
        flap_window: timedelta,
        device_token: Callable[[DeviceAlarm], str],
        id_key: bytes,
        room_of: Callable[[DeviceAlarm], str | None] = lambda _: None,
        store_room: Callable[[str], str] | None = None,
        household_of: Callable[[DeviceAlarm], str | None] = lambda _: None,
    ) -> None:
        self.deadline_for = deadline_for
        self.id_key = id_key  # the key of alarm ids (relay/alarms.py relay_id_key)
        self.flap_window = flap_window
        self.device_token = device_token
        # The room of an in-home device's household (relay/rooms.py): raw in memory only, for
        # sealing; `room_no` holds what the database may keep (encrypted by `store_room`).
        self.room_of = room_of
        self.store_room = store_room
        self.household_of = household_of  # an in-home alarm's household token (consent)
        self.by_key: dict[tuple[str, str], Alarm] = {}
        self.by_id: dict[str, Alarm] = {}
        self.earliest: datetime | None = None  # the nearest deadline: scans only when it has passed
        # (device, category) -> the device time of the clear of an alarm forgotten by `prune`, so a
        # late raise from before it is still recognised as stale; kept `tombstone` long.
        self.cleared_until: dict[tuple[str, str], datetime] = {}
        self.tombstone = max(flap_window, timedelta(hours=24))
        self.stale = 0  # events dropped as older than the last applied (`is_stale`)

    def _deadline(self, alarm: Alarm, now: datetime) -> None:
        alarm.deadline_at = now + timedelta(seconds=self.deadline_for(alarm.severity))
        if self.earliest is None or alarm.deadline_at < self.earliest:
            self.earliest = alarm.deadline_at

    def load(self, alarms: list[Alarm]) -> None:
        for a in alarms:
            self._track(a)

    def _track(self, alarm: Alarm) -> None:
        if alarm.deadline_at is not None and (self.earliest is None or alarm.deadline_at < self.earliest):
            self.earliest = alarm.deadline_at
        self.by_key[alarm.key] = alarm
        self.by_id[alarm.alarm_id] = alarm

    def _event(self, alarm: Alarm, state: str, at: datetime, actor: str, now: datetime) -> LifecycleEvent:
        alarm.events += 1
        alarm.state = state
        event_id = f"{alarm.alarm_id}-{alarm.events:04d}"
        log.info("relay: alarm %s %s (%s, %s, by %s)", alarm.alarm_id, state, alarm.category, alarm.severity, actor)
        return LifecycleEvent(event_id, alarm.snapshot(), state, at, actor, now)

    def is_stale(self, d: DeviceAlarm) -> bool:
        """Whether a device's raise or clear is older, by the device's own clock, than the last
        raise or clear the relay applied for the same (device, category) (issue 17, D7).

        MQTT keeps order only per connection and session: a resend after a reconnect, a
        device's store-and-forward queue or a redelivery can bring a "raised" after the
        "cleared" that followed it. The device's event time decides, not arrival order: a
        raise at or before the clear already applied is history, not a new alarm (it would
        reopen a cleared alarm with a fresh deadline); a clear older than the last raise
        does not close the newer raise. Such events are dropped (acknowledged, counted).
        """
        key = (self.device_token(d), d.category)
        current = self.by_key.get(key)
        if current is None:
            # Forgotten after the flap window (`prune`): its clear's device time is remembered.
            cleared = self.cleared_until.get(key)
            return cleared is not None and d.state == "raised" and d.event_time <= cleared
        if current.state == "cleared":
            return d.event_time <= current.last_event_time if d.state == "raised" else True
        return d.state == "cleared" and d.event_time < current.last_event_time

    def on_device(self, d: DeviceAlarm, now: datetime) -> LifecycleEvent | None:
        """A device's raise or clear; None when it changes nothing (a clear of no open alarm, or
        an event older by the device's clock than the last one applied: `is_stale`)."""
        if self.is_stale(d):
            self.stale += 1
            return None
        token = self.device_token(d)
        current = self.by_key.get((token, d.category))
        if d.state == "cleared":
            if current is None or current.state == "cleared":
                return None
            current.cleared_at, current.deadline_at = now, None
            current.last_event_time = d.event_time
            return self._event(current, "cleared", d.event_time, "device", now)
        if current is not None and (
            current.state != "cleared" or d.event_time - current.last_event_time <= self.flap_window
        ):
            if current.state == "cleared":  # flapping: the same alarm again, not a new one
                # Raised again after it cleared: whoever acknowledged the first raise has not seen
                # this one, so it starts unacknowledged with a fresh deadline and may escalate
                # again (issue 17: a re-raise must not inherit the old acknowledgement).
                current.cleared_at = None
                current.acknowledged_at = current.acknowledged_by = None
                current.escalated = False
                self._deadline(current, now)
            current.severity = severity_max(current.severity, d.severity)
            current.updates += 1
            current.last_event_time = max(current.last_event_time, d.event_time)
            current.raw, current.readings = self._raw(d), dict(d.readings)
            if current.room_no is None:
                current.room_no = self._stored_room(current.raw)
            if current.household is None:
                current.household = self.household_of(d)
            return self._event(current, "updated", d.event_time, "device", now)
        raw = self._raw(d)
        alarm = Alarm(
            alarm_id=alarm_id(self.id_key, d),
            community_id=d.community_id,
            family=d.family,
            category=d.category,
            device_id=token,
            severity=d.severity,
            state="raised",
            building=d.building,
            unit=d.unit,
            room_no=self._stored_room(raw),
            detected_at=d.event_time,
            raised_at=now,
            last_event_time=d.event_time,
            raw=raw,
            readings=dict(d.readings),
            household=self.household_of(d),
        )
        self._deadline(alarm, now)
        self._track(alarm)
        return self._event(alarm, "raised", d.event_time, "device", now)

    def _raw(self, d: DeviceAlarm) -> dict[str, str]:
        raw = dict(d.identifiers, device_id=d.device_id)
        room = self.room_of(d)
        if room is not None:
            raw["room_no"] = room
        return raw

    def _stored_room(self, raw: dict[str, str]) -> str | None:
        room = raw.get("room_no")
        return None if room is None or self.store_room is None else self.store_room(room)

    def on_ack(self, alarm_id: str, actor: str, now: datetime) -> LifecycleEvent | None:
        """A consumer's acknowledgement; None for an unknown, cleared or already acknowledged alarm."""
        alarm = self.by_id.get(alarm_id)
        if alarm is None or alarm.state == "cleared" or alarm.acknowledged_at is not None:
            return None
        alarm.acknowledged_at, alarm.acknowledged_by, alarm.deadline_at = now, actor, None
        return self._event(alarm, "acknowledged", now, actor, now)

    def due(self, now: datetime) -> list[LifecycleEvent]:
        """Escalate every alarm past its deadline (once each)."""
        if self.earliest is None or now < self.earliest:
            return []
        events = []
        for alarm in list(self.by_id.values()):
            if alarm.deadline_at is not None and alarm.deadline_at <= now and alarm.state in ("raised", "updated"):
                alarm.severity, alarm.escalated, alarm.deadline_at = severity_up(alarm.severity), True, None
                events.append(self._event(alarm, "escalated", now, "relay", now))
        left = [a.deadline_at for a in self.by_id.values() if a.deadline_at is not None]
        self.earliest = min(left) if left else None
        return events

    def prune(self, now: datetime) -> None:
        """Forget alarms cleared longer ago than the flap window (their rows stay in the database)."""
        for alarm in list(self.by_id.values()):
            if alarm.cleared_at is not None and alarm.cleared_at + self.flap_window < now:
                del self.by_id[alarm.alarm_id]
                if self.by_key.get(alarm.key) is alarm:
                    del self.by_key[alarm.key]
                    self.cleared_until[alarm.key] = alarm.last_event_time
        # Bounded by devices x categories; a raise older than a day by its device's clock after a
        # clear is not expected from any device we relay.
        horizon = now - self.tombstone
        self.cleared_until = {k: t for k, t in self.cleared_until.items() if t >= horizon}
