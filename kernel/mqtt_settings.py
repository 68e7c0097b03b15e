"""The MQTT collector's settings: the community broker, and how received messages are landed.

Kept apart from `connectors.mqtt` (and free of paho and Arrow) so the hub's `Settings` can
declare `mqtt: MqttSettings` without slowing the command line's start or importing in circles.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator


class MqttSettings(BaseModel):
    """The community broker and how the collector lands what it receives."""

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    # "5" normally; "3.1.1" only for brokers without MQTT 5 (amqtt): clean_session=False there.
    protocol: Literal["5", "3.1.1"] = "5"
    topic_prefix: str = "neuron"
    # Stable across restarts: the broker keeps the session (and its unacknowledged
    # messages) under this id. Empty: "neuron-collector-{community_id}".
    client_id: str = ""
    session_expiry_seconds: int = Field(7 * 24 * 3600, ge=60)
    keepalive_seconds: int = Field(30, ge=5)
    # Unacknowledged messages the broker may have in flight to us: bounds our memory.
    receive_maximum: int = Field(20_000, ge=1, le=65_535)
    batch_max_messages: int = Field(5_000, ge=1)
    # Latency is not the point here (the relay is the real-time path): a longer interval
    # means fewer, larger files for streams that trickle (at most 720 per stream and hour).
    batch_max_ms: int = Field(5_000, ge=10)
    # After a restart or reconnect, redelivered messages (DUP) whose msg_id was landed this
    # long before are acknowledged without landing them twice.
    redelivery_lookback_seconds: int = Field(120, ge=1)
    # A window is complete only once the collector has landed everything it received before
    # the window's end; until then extract raises a retriable error.
    require_watermark: bool = True
    watermark_wait_seconds: float = Field(10.0, ge=0)
    # Landed batches hold raw identifiers (encrypted): kept as long as a re-run may need them.
    landing_retention_hours: int = Field(72, ge=2)

    @model_validator(mode="after")
    def _batches_fit_in_flight(self) -> MqttSettings:
        if self.batch_max_messages > self.receive_maximum:
            raise ValueError("batch_max_messages must not exceed receive_maximum, or batches never fill")
        return self

    def subscription(self, community_id: str) -> str:
        """The topic filter of everything a community's devices publish."""
        return f"{self.topic_prefix}/{community_id}/+/+/+"
