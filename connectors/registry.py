"""The source streams this hub knows, by name."""

from __future__ import annotations

from collections.abc import Callable

from connectors.base import Stream
from connectors.vehicle_passes import VehiclePasses
from neuron.errors import ConfigError
from neuron.settings import Settings

STREAMS: dict[str, Callable[[Settings], Stream]] = {
    "vehicle_passes": lambda settings: VehiclePasses(settings.parking),
}


def make_stream(name: str, settings: Settings) -> Stream:
    """The configured stream called `name`."""
    try:
        return STREAMS[name](settings)
    except KeyError:
        raise ConfigError(f"unknown stream {name!r}; known: {', '.join(sorted(STREAMS))}") from None
