"""System 3, the perimeter electronic fence (zone status and intrusion alarms) over MQTT."""

from __future__ import annotations

from connectors.mqtt import MqttStream


class FenceEvents(MqttStream):
    """Zone status reports and alarms of the fence's zones."""

    name = "fence_events"
