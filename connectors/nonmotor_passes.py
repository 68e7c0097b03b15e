"""System 2, non-motor-vehicle gate passes (e-bikes, bicycles), pushed over MQTT by the sensing gates."""

from __future__ import annotations

from connectors.mqtt import MqttStream


class NonmotorPasses(MqttStream):
    """Passes through the sensing gates, one telemetry message per pass."""

    name = "nonmotor_passes"
