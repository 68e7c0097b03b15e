"""System 8, smart manhole covers (tilt, open and water-level status and alarms) over MQTT."""

from __future__ import annotations

from connectors.mqtt import MqttStream


class ManholeCovers(MqttStream):
    """Cover status (state, tilt, water level, battery) and alarms."""

    name = "manhole_covers"
