"""Prometheus metrics of the export API, served at /metrics to the networks allowed to scrape.

Labels are route templates, status codes, formats and refusal reasons: never a consumer
name, a feed partition or anything a request carried, so the page can be scraped by an
operator's monitoring without becoming another copy of the audit log. Each application
has its own registry (tests build many).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Request latency buckets (seconds): signed requests are meant to stay well under 50 ms.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ApiMetrics:
    """The counters and histograms the gate and the routes update."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "neuron_api_requests",
            "Requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "neuron_api_request_duration_seconds",
            "Time to the response head (a streamed body is not included), by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.refusals = Counter(
            "neuron_api_refusals",
            "Requests refused before or by the routes, by reason (unsigned, expired, replay, throttled, ...).",
            ["reason"],
            registry=self.registry,
        )
        self.rows = Counter(
            "neuron_api_rows_served", "Rows served, by response format.", ["format"], registry=self.registry
        )
        self.in_flight = Gauge("neuron_api_requests_in_flight", "Requests being served.", registry=self.registry)

    def observe(self, route: str, method: str, status: int, seconds: float, reason: str | None) -> None:
        """Count one answered request."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        if reason:
            self.refusals.labels(reason).inc()

    def served_rows(self, fmt: str, rows: int) -> None:
        """Count rows served in a format."""
        self.rows.labels(fmt).inc(rows)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
