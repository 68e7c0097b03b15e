"""The export API's limits and optional shared stores, as one settings model.

These fields belong in `Settings.api` (neuron/settings.py); until they are there,
`ApiOptions.from_settings` takes whichever of them `settings.api` already has and the
defaults for the rest, and tests construct `ApiOptions` directly.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import BaseModel, Field, field_validator

from neuron.settings import Settings


class ApiOptions(BaseModel):
    """Resource limits, timeouts and stores of the export API."""

    # Per consumer: a token bucket of `rate_burst` requests refilled at `rate_per_second`.
    rate_per_second: float = Field(20.0, gt=0)
    rate_burst: int = Field(60, ge=1)
    # Per client address, spent only by requests that do not authenticate (probes, refusals):
    # it bounds what unauthenticated traffic can cost without slowing any consumer down.
    anonymous_rate_per_second: float = Field(10.0, gt=0)
    anonymous_burst: int = Field(100, ge=1)
    # Time to produce a response head; a stream must then keep moving (each chunk within it).
    request_timeout_seconds: float = Field(30.0, gt=0)
    max_request_body_bytes: int = Field(65_536, ge=0)
    stream_chunk_bytes: int = Field(1_048_576, ge=4096)
    max_changes: int = Field(1_000, ge=1)  # change-log entries per response
    # Decoded partitions kept while consumers page through them (Arrow memory, per process).
    decoded_cache_bytes: int = Field(256 << 20, ge=0)
    # Nonces and rate-limit buckets in Redis, shared by several API processes; None: the
    # control database (nonces) and this process's memory (buckets).
    redis_url: str | None = None
    # Who may scrape /metrics; everyone else gets the same 404 as for any unknown path.
    metrics_networks: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])

    @field_validator("metrics_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # ValueError names the bad entry
        return value

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiOptions:
        """The options in `settings.api` (those it has), defaults for the rest."""
        given: dict[str, Any] = settings.api.model_dump()
        return cls.model_validate({name: given[name] for name in cls.model_fields if name in given})

    def metrics_allowed(self, address: str | None) -> bool:
        """Whether a client at `address` may read /metrics."""
        if address is None:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(n, strict=False) for n in self.metrics_networks)
