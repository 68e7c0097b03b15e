"""A private hub for the API tests: settings under a temporary home, the test's own sharing
policies (so the API's tests do not follow edits of config/policies), consumers with freshly
generated keys (never written to disk), published partitions, and the API served by a real
uvicorn server on loopback, over HTTPS with the hub's own certificate (as `neuron serve` serves it:
issue 17), which every client of the tests pins (`ca`, `trusted`). A test that checks plain-HTTP
behaviour builds its own plain server.

PLAN publishes, for feed traffic.vehicle_flow_hourly, in seq order:
  1 district         day 2026-11-20 v1  (superseded by seq 4)
  2 public_security  day 2026-11-20 v1
  3 district         day 2026-11-21 v1
  4 district         day 2026-11-20 v2
  5 public_security  day 2026-11-21 v1
  6 district         day 2026-11-22 v1
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import requests
import uvicorn
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from api.app import SERVER_OPTIONS, create_app
from api.client import HubClient
from api.consumers import register_consumer
from api.signing import sign_request
from api.transport import tls_options
from kernel.settings import ApiSettings, Settings
from privacy.keys import HubKeys, SigningKey, init_keys
from privacy.tls import ensure_certificate, hub_certificate, jwks_fingerprint
from tests.api.lake import Published, publish
from warehouse.migrations import migrate

WINDOW = 300
FLOW = "traffic.vehicle_flow_hourly"
FLOW_FIELDS = ["community_id", "day", "gate_code", "hour_start", "entries", "exits"]
FLOW_MORE = ["resident_entries", "visitor_entries", "new_energy_entries", "charges_fen"]
POLICIES: dict[str, dict[str, Any]] = {
    # Every field of the flow feed.
    "district": {"feeds": {FLOW: {"fields": dict.fromkeys(FLOW_FIELDS + FLOW_MORE, "keep")}}},
    # Six fields: never charges_fen, nor the resident/visitor/new-energy split.
    "public_security": {"feeds": {FLOW: {"fields": dict.fromkeys(FLOW_FIELDS, "keep")}}},
    # Nothing: an empty catalog.
    "open_data": {"feeds": {}},
}
DISPLAY_NAMES = {
    "district": ("区数据办", "District data office"),
    "public_security": ("公安", "Public security"),
    "open_data": ("开放数据", "Open data"),
}
# The certificate each test hub serves, by origin (`https://127.0.0.1:port`): what the tests' clients
# pin (send, trusted). Nothing else is trusted: not the system's CAs, never verification off.
TRUSTED: dict[str, str] = {}


def trusted(url: str) -> str | bool:
    """What a client of `url` verifies the channel with: the hub's certificate, else the system's CAs."""
    parts = url.split("/", 3)
    return TRUSTED.get("/".join(parts[:3]), True)


# Limits no test reaches by accident; the tests of limits build hubs with their own.
ROOMY = ApiSettings(rate_per_second=1000, rate_burst=10_000, anonymous_rate_per_second=1000, anonymous_burst=10_000)


def write_policies(folder: Path) -> Path:
    """The test policies as YAML files in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for consumer, body in POLICIES.items():
        policy = {"consumer": consumer, "version": 1, "title": f"{consumer} (test)", "retention_days": 30}
        policy |= {"legal_basis": "test", **body}
        # The names the console shows (the real policies carry theirs the same way).
        zh, en = DISPLAY_NAMES[consumer]
        policy |= {"display_name": {"zh": zh, "en": en}, "legal_basis_text": {"zh": "测试用依据", "en": "test basis"}}
        (folder / f"{consumer}.yaml").write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
    return folder


def hub_settings(home: Path, control_url: str = "") -> Settings:
    """Settings of a private hub under `home`, independent of the caller's environment."""
    return Settings(
        home=home,
        state_dir=Path("var"),
        lake_dir=Path("lake"),
        control_db_url=control_url,
        master_secret=None,
        policies_dir=write_policies(home / "policies"),
        api=ApiSettings(signature_window_seconds=WINDOW, max_page_size=50, default_page_size=10),
    )


@dataclass(frozen=True)
class Identity:
    """A consumer's key pair, generated for the test run."""

    consumer: str
    key_id: str
    private_key: Ed25519PrivateKey


def public_pem(private: Ed25519PrivateKey) -> bytes:
    """The PEM of a private key's public half."""
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def new_identity(settings: Settings, consumer: str, policy: str | None = None) -> Identity:
    """Generate a key pair and register its public half for `consumer`."""
    private = Ed25519PrivateKey.generate()
    return Identity(consumer, register_consumer(settings, consumer, public_pem(private), policy), private)


class ServerThread:
    """The app under a real uvicorn server on 127.0.0.1, in a background thread."""

    def __init__(self, app: FastAPI, tls: dict[str, Any] | None = None) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        # `tls`: uvicorn's ssl_* options (api.transport.tls_options), as `neuron serve` passes them.
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.socket.getsockname()[1]}"
        # The hub's public name is where it listens, known only now that the port is bound.
        if hasattr(app.state, "authenticator"):
            app.state.authenticator.also_known_as(self.url.split("://")[1])
        config = uvicorn.Config(app, log_level="warning", lifespan="off", **SERVER_OPTIONS, **(tls or {}))
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        for _ in range(500):  # polls start-up; the test itself never depends on timing
            if self.server.started:
                return self
            time.sleep(0.01)
        raise RuntimeError("uvicorn did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


@dataclass
class LiveHub:
    """A running hub and what the fixture put into it."""

    settings: Settings
    app: FastAPI
    url: str
    identities: dict[str, Identity]
    published: list[Published]
    signing_key: SigningKey
    jwks: dict[str, Any] = field(default_factory=dict)
    ca: Path | None = None  # the hub's certificate, pinned by its clients (None: plain HTTP)

    def get(self, path: str, **options: Any) -> requests.Response:
        """A plain GET of `path` (unsigned), the channel verified against the hub's certificate."""
        return requests.get(self.url + path, timeout=10, verify=trusted(self.url), **options)

    def admit(self, url: str) -> None:
        """Accept requests signed for `url` too (a proxy in front of the hub, as its public name)."""
        self.app.state.authenticator.also_known_as(url.split("://")[1].split("/")[0])

    def publish(self, consumer: str, day: date, version: int, count: int, **options: Any) -> Published:
        """Publish one more partition version, as the publisher would."""
        published = publish(self.settings, self.signing_key, consumer, day, version, count, **options)
        self.published.append(published)
        return published

    def latest(self, consumer: str) -> list[Published]:
        """The consumer's partition versions that no newer version supersedes, in seq order."""
        mine = [p for p in self.published if p.consumer == consumer]
        newest = {p.partition_key: p.version for p in sorted(mine, key=lambda p: p.version)}
        return [p for p in mine if p.version == newest[p.partition_key]]

    def client(self, consumer: str, url: str | None = None, **options: Any) -> HubClient:
        """A client of the consumer, pinned to the hub's JWKS unless `jwks=None` is passed."""
        identity = self.identities[consumer]
        options.setdefault("jwks", self.jwks)
        options.setdefault("ca", self.ca)
        if options["jwks"] is None:  # fetched from the hub: pinned by its fingerprint instead
            options.setdefault("jwks_fingerprint", jwks_fingerprint(self.jwks))
        return HubClient(url or self.url, identity.key_id, identity.private_key, **options)

    def signed(
        self,
        path: str,
        identity: Identity | None,
        params: dict[str, Any] | None = None,
        **sign_options: Any,
    ) -> requests.PreparedRequest:
        """A GET for `path`, signed by `identity` (unsigned when None), ready for `send`."""
        request = requests.Request("GET", self.url + path, params=params or {}).prepare()
        if identity is not None:
            sign_request(request, identity.key_id, identity.private_key, **sign_options)
        return request


def send(request: requests.PreparedRequest) -> requests.Response:
    """Send a prepared request as it is (to a test hub: its certificate pinned)."""
    with requests.Session() as session:
        return session.send(request, timeout=10, allow_redirects=False, verify=trusted(str(request.url)))


PLAN = [
    ("district", date(2026, 11, 20), 1, 5),
    ("public_security", date(2026, 11, 20), 1, 5),
    ("district", date(2026, 11, 21), 1, 7),
    ("district", date(2026, 11, 20), 2, 6),
    ("public_security", date(2026, 11, 21), 1, 3),
    ("district", date(2026, 11, 22), 1, 4),
]


@contextmanager
def running_hub(home: Path, options: ApiSettings = ROOMY, control_url: str = "", tls: bool = True) -> Iterator[LiveHub]:
    """A hub under `home` with the PLAN published, three consumers, and the API being served
    (over HTTPS with the certificate `neuron init` makes, unless `tls=False`)."""
    settings = hub_settings(home, control_url)
    init_keys(settings)
    migrate(settings.control_url)
    key = HubKeys.load(settings).active_signing_key
    published = [publish(settings, key, *step) for step in PLAN]
    identities = {name: new_identity(settings, name) for name in ("district", "public_security", "open_data")}
    app = create_app(settings, options=options)
    ca = None
    if tls:
        ensure_certificate(settings)
        ca = hub_certificate(settings).certfile
    with ServerThread(app, tls=tls_options(settings) if tls else None) as server:
        if ca is not None:
            TRUSTED[server.url] = str(ca)
        try:
            hub = LiveHub(settings, app, server.url, identities, published, key, ca=ca)
            hub.jwks = hub.get("/.well-known/jwks.json").json()
            yield hub
        finally:
            TRUSTED.pop(server.url, None)
