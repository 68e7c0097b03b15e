"""System 8, smart streetlights (lamp state, energy and faults) over MQTT."""

from __future__ import annotations

from connectors.mqtt import MqttStream


class Streetlights(MqttStream):
    """Lamp telemetry (state, power, energy meter) and fault alarms."""

    name = "streetlights"
