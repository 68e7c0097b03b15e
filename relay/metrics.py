"""The relay's health on `/metrics` (Prometheus text): latency, outbox depth, reconnects, rejections.

Each relay has its own registry (tests run several in one process); the endpoint is a small
HTTP server on a configurable loopback port (`[relay] metrics_port`, 0 for none).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class RelayMetrics:
    """Counters, gauges and the latency histogram of one relay."""

    def __init__(self, outbox_depth: Callable[[], int]) -> None:
        r = self.registry = CollectorRegistry()
        self.latency = Histogram(
            "neuron_relay_latency_seconds",
            "From receiving a device alarm to its destination broker acknowledging the relayed message",
            ["destination"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.outbox_depth = Gauge(
            "neuron_relay_outbox_depth", "Outbox messages not yet acknowledged by their broker", registry=r
        )
        self.outbox_depth.set_function(outbox_depth)
        self.reconnects = Counter("neuron_relay_reconnects", "Connections (re)made to a broker", ["broker"], registry=r)
        self.rejections = Counter(
            "neuron_relay_rejections", "Alarms rejected to the quarantine topic", ["kind"], registry=r
        )
        self.inbound = Counter(
            "neuron_relay_inbound_messages", "Device alarm messages received, by outcome", ["outcome"], registry=r
        )
        # Label children the hot path uses, looked up once.
        self.inbound_recorded = self.inbound.labels("recorded")
        self.inbound_duplicate = self.inbound.labels("duplicate")
        self.inbound_not_relayed = self.inbound.labels("not_relayed")
        self.inbound_stale = self.inbound.labels("stale")  # older by the device's clock than the last applied
        self.events = Counter("neuron_relay_lifecycle_events", "Alarm lifecycle events recorded", ["state"], registry=r)
        self.published = Counter(
            "neuron_relay_published_messages", "Messages acknowledged by their broker", ["destination"], registry=r
        )
        self._server: Any = None

    def serve(self, host: str, port: int) -> None:
        """Serve `/metrics` on host:port in a daemon thread."""
        self._server, _ = start_http_server(port, addr=host, registry=self.registry)

    def text(self) -> str:
        return generate_latest(self.registry).decode()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
