"""GA/T 1400 (VIID) motor-vehicle records: `traffic.vehicle_passes` as public-security platforms take it.

A page of passes becomes `{"MotorVehicleListObject": {"MotorVehicleObject": [...]}}` with the
standard's field names and codes; the mapping of one pass is schemas/viid.py (shared with the
cascade to the upper VIID platform, peers/viid/).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow as pa

from api.formats import RecordFormat, register_format
from schemas.feeds import Feed
from schemas.viid import Pass, motor_vehicle

FEEDS = frozenset({"traffic.vehicle_passes"})


def render(tables: list[pa.Table], fields: list[str], feed: Feed) -> bytes:
    """A page of vehicle passes as a GA/T 1400 motor-vehicle list (UTF-8 JSON)."""
    vehicles = [motor_vehicle(Pass.of(row)) for table in tables for row in table.to_pylist()]
    body = {"MotorVehicleListObject": {"MotorVehicleObject": vehicles}}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class FeedFormat(RecordFormat):
    """A standard format and the feeds it has a mapping for: it is offered for those only."""

    feeds: frozenset[str] = frozenset()


VIID = FeedFormat("viid", "application/json", render, standard=True, feeds=FEEDS)
register_format(VIID)
