"""System 6, elderly-care wristbands of the residents whose households opted in, over MQTT."""

from __future__ import annotations

from connectors.mqtt import MqttStream


class ElderlyCare(MqttStream):
    """Wristband heart rate and activity, and fall, SOS and heart-rate alarms."""

    name = "elderly_care"
