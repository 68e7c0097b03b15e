"""System 7, public-area environment stations (PM2.5, PM10, noise, temperature, humidity) over MQTT."""

from __future__ import annotations

from connectors.mqtt import MqttStream


class Environment(MqttStream):
    """One reading per station and minute."""

    name = "environment"
