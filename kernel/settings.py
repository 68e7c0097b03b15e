"""The hub's settings: one object, from the environment (NEURON_*) over a TOML file.

The TOML file is `config/hub.toml` by default (Music Square's example) or the path in
NEURON_CONFIG. Relative paths are resolved against `home` (NEURON_HOME, default the
current directory), so one environment variable moves a whole hub, which is how tests
and the demo get a private one.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from kernel.errors import ConfigError
from kernel.inbox_settings import InboxSettings
from kernel.mqtt_settings import MqttSettings
from kernel.push_settings import PushSettings
from kernel.relay_settings import RelaySettings
from kernel.viid_settings import ViidSettings

REPO_ROOT = Path(__file__).resolve().parent.parent


class HttpSource(BaseModel):
    """A vendor's paged HTTP API (system 1, parking; the intercom/CCTV vendor's open API)."""

    base_url: str = "http://127.0.0.1:8701"
    token: SecretStr = SecretStr("")
    page_size: int = Field(200, ge=1, le=1000)
    timeout_seconds: float = Field(10.0, gt=0)  # one request, whole body included
    max_retries: int = Field(5, ge=0)
    window_seconds: float = Field(900.0, gt=0)  # every page of one window, retries included
    max_pages: int = Field(10_000, ge=1)  # of one window: a vendor that never ends is refused
    max_response_bytes: int = Field(64 * 1024 * 1024, ge=1024)  # of one page


class SqlSource(BaseModel):
    """A source database read by the SQL family (the WeChat platform's backend)."""

    url: SecretStr = SecretStr("")  # SQLAlchemy URL; may carry a password
    db_schema: str | None = None  # PostgreSQL schema / MySQL database, if not the URL's
    batch_size: int = Field(1000, ge=1, le=100_000)
    timezone: str = "Asia/Shanghai"  # of timestamps the database stores without a zone
    timeout_seconds: float = Field(30.0, gt=0)


class FileDropSource(BaseModel):
    """A vendor's drop folder (relative paths are taken from the hub's home)."""

    folder: Path = Path("var/drops/door_access")
    suffixes: tuple[str, ...] = (".csv", ".xlsx")
    timezone: str = "Asia/Shanghai"  # of the naive times the vendor writes
    max_file_bytes: int = Field(512 * 1024 * 1024, ge=1024)  # a larger file goes to failed/ unread


class ApiSettings(BaseModel):
    """The export API: where it listens, its limits, timeouts and optional shared stores."""

    host: str = "127.0.0.1"
    port: int = 8700
    # The authorities (host[:port]) consumers reach this hub by: a signed `@authority` (or the
    # authority inside a signed `@target-uri`) must be one of them, so a request signed for
    # another hub is refused here (issue 17). Empty: `host:port`.
    public_names: list[str] = Field(default_factory=list)
    # HTTPS by default (issue 17): `neuron init` makes a self-signed certificate for the public
    # names under var/keys/tls/, unless the operator names their own files here.
    tls: bool = True
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    hsts_seconds: int = Field(31_536_000, ge=0)
    # The admin console has a listener of its own, on the community's admin network
    # (loopback by default): never the consumers' port.
    console_host: str = "127.0.0.1"
    console_port: int = 8710
    signature_window_seconds: int = Field(300, ge=10)
    max_page_size: int = Field(10_000, ge=1)
    default_page_size: int = Field(1_000, ge=1)
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
    stream_chunk_bytes: int = Field(1 << 20, ge=4096)
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

    def authorities(self) -> list[str]:
        """The public names, or `host:port` when none are configured."""
        return self.public_names or [f"{self.host}:{self.port}"]

    def metrics_allowed(self, address: str | None) -> bool:
        """Whether a client at `address` may read /metrics."""
        if address is None:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(n, strict=False) for n in self.metrics_networks)


def _config_file() -> Path:
    given = os.environ.get("NEURON_CONFIG")
    if given and not Path(given).is_file():
        # A mistyped path must not fall back to the built-in defaults silently.
        raise ConfigError(f"NEURON_CONFIG names {given}, which is not a file: fix the path or unset it")
    return Path(given) if given else REPO_ROOT / "config" / "hub.toml"


def unknown_keys(data: dict[str, Any], model: type[BaseModel], prefix: str = "") -> list[str]:
    """Keys of a config table that `model` does not declare (nested tables checked too), each
    with the closest known key when one is close: a mistyped key is an error, not ignored."""
    found: list[str] = []
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            close = difflib.get_close_matches(key, list(model.model_fields), n=1)
            found.append(f"{prefix}{key}" + (f" (did you mean {prefix}{close[0]}?)" if close else ""))
            continue
        inner = field.annotation
        if isinstance(value, dict) and isinstance(inner, type) and issubclass(inner, BaseModel):
            found += unknown_keys(value, inner, f"{prefix}{key}.")
    return found


class CheckedTomlSource(TomlConfigSettingsSource):
    """The TOML file, refused with the names of any keys the settings do not know."""

    def __init__(self, settings_cls: type[BaseSettings], toml_file: Path):
        super().__init__(settings_cls, toml_file=toml_file)
        unknown = unknown_keys(self.toml_data, settings_cls)
        if unknown:
            raise ConfigError(f"{toml_file}: unknown setting(s): {', '.join(unknown)}")


class Settings(BaseSettings):
    """Everything a hub needs to know about itself."""

    model_config = SettingsConfigDict(env_prefix="NEURON_", env_nested_delimiter="__", extra="ignore")

    home: Path = Field(default_factory=Path.cwd)
    community_id: str = "music-square"
    community_name: str = "音乐广场"
    district: str = "putuo"
    timezone: str = "Asia/Shanghai"
    state_dir: Path = Path("var")
    control_db_url: str = ""
    warehouse_path: Path = Path("var/warehouse.duckdb")
    lake_dir: Path = Path("lake")
    policies_dir: Path = REPO_ROOT / "config" / "policies"
    vault_retention_days: int = Field(30, ge=1)
    quarantine_retention_days: int = Field(90, ge=1)
    # Logs (warehouse/log_retention.py): `neuron up`'s service logs, one file per day, and
    # Airflow's task, scheduler and DAG-processor logs. Long enough to investigate an incident
    # reported a week later; no longer, since a log tells when each device and consumer acted.
    service_log_retention_days: int = Field(14, ge=1)
    task_log_retention_days: int = Field(30, ge=1)
    airflow_log_dir: Path | None = None  # default: <state>/airflow/logs, where `neuron up` puts them
    # How long a rotated signing key stays in the JWKS after it stopped signing (issue 17:
    # bounded, not ten years). Rotation re-signs every manifest with the new key, so only
    # short-lived signatures (answers, relay messages, consumers' stored copies) need the old
    # key: one rotation period (the DAG's quarter); docs/security.md says why.
    signature_lifetime_days: int = Field(90, ge=1, le=730)
    # The period within which one consumer's pseudonym of an identifier stays the same (policies may override).
    pseudonym_epoch: Literal["month", "quarter", "year"] = "quarter"
    failure_budget: float = Field(0.05, ge=0, le=1)
    failure_budget_min_rows: int = Field(10, ge=0)
    master_secret: SecretStr | None = None
    parking: HttpSource = HttpSource()
    platform: SqlSource = SqlSource()
    door_access: FileDropSource = FileDropSource()
    intercom: HttpSource = HttpSource(base_url="http://127.0.0.1:8702", page_size=500)
    mqtt: MqttSettings = MqttSettings()
    relay: RelaySettings = RelaySettings()
    viid: ViidSettings = ViidSettings()
    inbox: InboxSettings = InboxSettings()
    api: ApiSettings = ApiSettings()
    push: PushSettings = PushSettings()  # [[push.ngsi_ld]]: consumers' context brokers

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            CheckedTomlSource(settings_cls, _config_file()),
        )

    def resolve(self, path: Path) -> Path:
        """An absolute path: relative ones are taken from the hub's home."""
        return path if path.is_absolute() else (self.home / path).resolve()

    @cached_property
    def state_path(self) -> Path:
        return self.resolve(self.state_dir)

    @cached_property
    def keys_dir(self) -> Path:
        return self.state_path / "keys"

    @cached_property
    def vault_dir(self) -> Path:
        return self.state_path / "vault"

    @cached_property
    def work_dir(self) -> Path:
        """Intermediate, de-identified batches between pipeline tasks."""
        return self.state_path / "work"

    @cached_property
    def lake_path(self) -> Path:
        return self.resolve(self.lake_dir)

    @cached_property
    def warehouse_file(self) -> Path:
        return self.resolve(self.warehouse_path)

    @cached_property
    def control_url(self) -> str:
        return self.control_db_url or f"sqlite:///{self.state_path / 'control.db'}"


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and the TOML file, with explicit overrides on top."""
    return Settings(**overrides)
