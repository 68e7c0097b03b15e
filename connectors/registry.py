"""The source streams this hub knows: name, system, cadence, and where the class lives.

Kept free of heavy imports: Airflow parses the DAG files that read this registry, and
the connector classes are imported only when a task runs (`make_stream`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from connectors.base import Stream
from neuron.errors import ConfigError
from neuron.settings import Settings


@dataclass(frozen=True)
class StreamSpec:
    """How one stream is declared to the hub."""

    name: str
    system: int  # 1–9, the seed's numbering (DESIGN.md)
    schedule: str  # cron, in the hub's timezone: when its ingest DAG runs
    target: str  # "module:Class"; the class takes the hub's Settings
    title: str


STREAMS: dict[str, StreamSpec] = {
    spec.name: spec
    for spec in [
        StreamSpec(
            "vehicle_passes",
            1,
            "0 * * * *",
            "connectors.vehicle_passes:VehiclePasses",
            "Vehicle gate passes and parking charges (parking vendor HTTP API)",
        ),
    ]
}


def make_stream(name: str, settings: Settings) -> Stream:
    """The configured stream called `name`."""
    try:
        spec = STREAMS[name]
    except KeyError:
        raise ConfigError(f"unknown stream {name!r}; known: {', '.join(sorted(STREAMS))}") from None
    module, _, cls = spec.target.partition(":")
    stream: Stream = getattr(importlib.import_module(module), cls)(settings)
    return stream
