"""System 6, in-home smoke and gas detectors of the households that opted in, over MQTT."""

from __future__ import annotations

from connectors.mqtt import MqttStream


class HomeSafety(MqttStream):
    """Detector readings and alarms (smoke, gas, low battery), one message each."""

    name = "home_safety"
