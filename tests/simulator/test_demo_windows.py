"""The demo's batch-day windows: every stream exactly once, day streams on the simulated day,
received streams on the 24 hours up to a whole minute after the device day landed; and the
plan the Airflow runner reads, a later group included."""

from __future__ import annotations

import threading
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from connectors.registry import STREAMS
from neuron.airflow_runner import Group, LaterGroup, _plan_entry
from simulator.demo_day import day_group, next_minute, received_group

TZ = "Asia/Shanghai"


def test_every_stream_gets_one_window_on_the_right_clock() -> None:
    day = day_group(date(2026, 12, 7), TZ)
    received = received_group(datetime(2026, 12, 8, 7, 13, tzinfo=ZoneInfo(TZ)), TZ)
    assert sorted(day.dags + received.dags) == sorted(STREAMS)
    assert {"vehicle_passes", "door_access", "platform_votes", "camera_health"} <= set(day.dags)
    assert {"home_safety", "elderly_care", "alarm_lifecycle"} <= set(received.dags)
    assert day.cadence == "0 0 * * *" and day.ends == [datetime(2026, 12, 8, tzinfo=ZoneInfo(TZ))]
    # A daily cron at that minute: a manual run at it covers the 24 hours before it.
    assert received.cadence == "13 7 * * *" and received.ends == [datetime(2026, 12, 8, 7, 13, tzinfo=ZoneInfo(TZ))]
    assert next_minute(datetime(2026, 12, 8, 7, 12, 5, 7)) == datetime(2026, 12, 8, 7, 13)


def test_a_later_group_is_waited_for_and_read_whole(tmp_path: Path) -> None:
    later = LaterGroup(["home_safety"], tmp_path / "later.json")
    entry = _plan_entry(later.to_json())
    assert isinstance(entry, LaterGroup) and entry.path == later.path
    group = Group("13 7 * * *", ["home_safety"], [datetime(2026, 12, 8, 7, 13, tzinfo=ZoneInfo(TZ))])
    got: list[Group] = []
    waiter = threading.Thread(target=lambda: got.append(entry.wait(poll=0.01)))
    waiter.start()
    later.give(group)
    waiter.join(10)
    assert got == [group]
    assert _plan_entry(group.to_json()) == group
