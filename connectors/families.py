"""The connector families: how a stream's records are read, by the family its contract names
(`source.family` in schemas/contracts/*.yaml). A new stream of a known family is one contract
file; a new family is a class here taking (settings, contract, state)."""

from __future__ import annotations

from typing import Any

from connectors.alarm_lifecycle import AlarmLifecycle
from connectors.base import SourceState, Stream
from connectors.door_access import DoorAccess
from connectors.intercom import IntercomStream
from connectors.mqtt import MqttStream
from connectors.parking_api import ParkingApiStream
from connectors.platform import PlatformTable
from kernel.errors import ConfigError
from schemas.contract import Contract

FAMILIES: dict[str, Any] = {
    "parking_api": ParkingApiStream,  # system 1: the parking vendor's paged HTTP API
    "door_access_drop": DoorAccess,  # system 4: the door-access vendor's daily export, dropped in a folder
    "intercom_api": IntercomStream,  # system 5: the intercom/CCTV vendor's open API
    "platform_sql": PlatformTable,  # system 9: a table of the WeChat platform's database
    "mqtt": MqttStream,  # systems 2, 3, 6, 7, 8: device messages the collector landed
    "relay_lifecycle": AlarmLifecycle,  # the relay's alarm lifecycles, from the control database
}


def open_stream(settings: Any, contract: Contract, state: SourceState | None = None) -> Stream:
    """The stream of `contract`, read by its family."""
    if contract.source is None:
        raise ConfigError(f"stream {contract.name}: its contract names no source family")
    stream: Stream = FAMILIES[contract.source.family](settings, contract, state)
    return stream
