"""`[[push.ngsi_ld]]`: one entry per consumer that runs an NGSI-LD context broker.

Plain pydantic, no HTTP: the hub's `Settings` declares `push: PushSettings` without slowing the
command line. Secrets never go in the TOML file: a token or client secret is given by naming
the environment variable that holds it (`token_env`, `client_secret_env`); tests may pass the
secret itself.

    [[push.ngsi_ld]]
    name = "district"                      # the consumer; its sharing policy decides what is sent
    broker_url = "https://citybrain.example/"
    tenant = "putuo"                       # NGSILD-Tenant header
    context = ["https://smartdatamodels.org/context.jsonld"]
    auth = { kind = "oauth2", token_url = "https://citybrain.example/oauth2/token",
             client_id = "neuron-music-square", client_secret_env = "NEURON_CITYBRAIN_SECRET" }
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

# The feeds that have an NGSI-LD rendering (api/format_ngsi.py): what a push may carry.
NGSI_FEEDS = ("env.air_quality_hourly", "infra.assets_status", "safety.alarms")


def _secret(value: SecretStr | None, env: str, what: str) -> str:
    if value is not None and value.get_secret_value():
        return value.get_secret_value()
    found = os.environ.get(env, "") if env else ""
    if not found:
        raise ValueError(f"{what}: set the environment variable named by its *_env setting")
    return found


class NoAuth(BaseModel):
    """A broker on a private network that takes unauthenticated writes."""

    kind: Literal["none"] = "none"


class BearerAuth(BaseModel):
    """A static bearer token (RFC 6750), e.g. an API key issued by the city brain."""

    kind: Literal["bearer"] = "bearer"
    token_env: str = ""
    token: SecretStr | None = None  # tests only; in production, token_env

    def secret(self) -> str:
        return _secret(self.token, self.token_env, "bearer token")


class OAuth2Auth(BaseModel):
    """OAuth2 client credentials (RFC 6749 §4.4), as FIWARE's Keyrock and Keycloak issue them."""

    kind: Literal["oauth2"] = "oauth2"
    token_url: str
    client_id: str
    client_secret_env: str = ""
    client_secret: SecretStr | None = None  # tests only; in production, client_secret_env
    scope: str | None = None
    # Renew this long before the token expires, so no write goes out with a token about to lapse.
    refresh_margin_seconds: float = Field(30, ge=0)

    def secret(self) -> str:
        return _secret(self.client_secret, self.client_secret_env, "OAuth2 client secret")


Auth = Annotated[NoAuth | BearerAuth | OAuth2Auth, Field(discriminator="kind")]


class NgsiLdPush(BaseModel):
    """One consumer's broker and how its entities are written to it."""

    name: str  # the consumer; also the actor of the audit entries
    policy: str = ""  # the sharing policy the pushes are made under (default: `name`)
    broker_url: str
    tenant: str | None = None  # NGSILD-Tenant; None: the broker's default tenant
    # The @context the consumer agreed with us. Empty: each entity's own Smart Data Models
    # contexts as api/format_ngsi.py renders them (application/ld+json only).
    context: list[str] = []
    # application/ld+json: @context in every entity; application/json: a Link header instead,
    # which can name only one context document (clause 6.3.5), so `context` must then be one URL.
    content_type: Literal["application/ld+json", "application/json"] = "application/ld+json"
    auth: Auth = NoAuth()
    feeds: list[str] = Field(default_factory=lambda: [f for f in NGSI_FEEDS])
    alerts: bool = True  # alarms from the relay as Alert entities, as they happen
    history: bool = True  # measurements also as temporal instances (temporal API)
    # `update` keeps attributes not resent; the spec's default `replace` would drop them.
    upsert_options: Literal["update", "replace"] = "update"
    chunk_size: int = Field(1000, ge=1, le=10_000)  # Orion-LD refuses more than 1,000 (#1951)
    max_attempts: int = Field(5, ge=1)  # per entity (207) or per request (5xx, timeouts)
    backoff_seconds: float = Field(0.5, ge=0)
    backoff_max_seconds: float = Field(30, ge=0)
    timeout_seconds: float = Field(30, gt=0)
    poll_seconds: float = Field(5, gt=0)  # how often new feed publications are looked for
    alert_poll_seconds: float = Field(0.2, gt=0)  # how often the relay's alert outbox is read
    page_rows: int = Field(20_000, ge=1)  # published rows per round (history: one temporal write per series a round)
    upsert_connections: int = Field(2, ge=1, le=16)  # chunks in flight at once
    temporal_connections: int = Field(4, ge=1, le=16)  # temporal writes in parallel (one per series)

    @model_validator(mode="after")
    def _one_link_context(self) -> NgsiLdPush:
        if self.content_type == "application/json" and len(self.context) != 1:
            raise ValueError(f"push.ngsi_ld {self.name}: application/json needs exactly one context URL (Link)")
        unknown = set(self.feeds) - set(NGSI_FEEDS)
        if unknown:
            raise ValueError(f"push.ngsi_ld {self.name}: no NGSI-LD rendering for feed(s) {', '.join(sorted(unknown))}")
        return self

    @property
    def policy_name(self) -> str:
        return self.policy or self.name

    @property
    def alert_outbox(self) -> str:
        """The relay outbox destination this consumer's Alert entities wait in."""
        return alert_outbox(self.name)


def alert_outbox(name: str) -> str:
    return f"ngsi-ld:{name}"


class PushSettings(BaseModel):
    """Pushes to the consumers' own platforms."""

    ngsi_ld: list[NgsiLdPush] = []
