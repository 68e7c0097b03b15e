"""The district's own configuration: a TOML file (config/district.toml by default, or the path
in NEURON_DISTRICT_CONFIG), every key overridable by `NEURON_DISTRICT_<KEY>` (nested with `__`).

It names the district's home (keys, cursors, receipts, lock files), the Iceberg catalog and
warehouse, and the community hubs: each with its URL, its pinned JWKS (a file, or the
SHA-256 fingerprint of the JWKS the hub serves) and the consumer name the district is
registered under there. No hub secret appears here: the district signs with its own key.
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

REPO_ROOT = Path(__file__).resolve().parent.parent
COMMUNITY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def config_file() -> Path:
    """The district's TOML file."""
    return Path(os.environ.get("NEURON_DISTRICT_CONFIG", REPO_ROOT / "config" / "district.toml"))


class HubEntry(BaseModel):
    """One community hub the district gathers from."""

    community_id: str
    subdistrict: str = ""
    url: str
    # Pin one of them: the hub's JWKS as a file, or the fingerprint of the JWKS it serves.
    jwks_file: Path | None = None
    jwks_fingerprint: str | None = None
    consumer: str = "district"  # the name the district is registered under at this hub
    key_file: Path | None = None  # the district's request-signing key for this hub (default: [keys])
    timeout_seconds: float = Field(30, gt=0)
    retries: int = Field(2, ge=0)
    feeds: list[str] | None = None  # None: every feed the hub grants

    @field_validator("community_id")
    @classmethod
    def _community(cls, value: str) -> str:
        if not COMMUNITY.match(value):
            raise ValueError("community_id must be lower-case letters, digits, '_' or '-'")
        return value

    @model_validator(mode="after")
    def _pinned(self) -> HubEntry:
        if (self.jwks_file is None) == (self.jwks_fingerprint is None):
            raise ValueError(f"hub {self.community_id}: pin its keys with exactly one of jwks_file, jwks_fingerprint")
        return self


class DistrictSettings(BaseSettings):
    """Everything the district application needs to know."""

    model_config = SettingsConfigDict(env_prefix="NEURON_DISTRICT_", env_nested_delimiter="__", extra="forbid")

    name: str = "putuo"
    home: Path = Path("var/district")
    # SQLite for one machine; `postgresql+psycopg://user@host/db` past it (docs/district.md).
    catalog_uri: str = ""
    # A local folder, or `s3://bucket/prefix` with the s3.* options in `catalog_properties`.
    warehouse: str = ""
    catalog_properties: dict[str, str] = {}
    namespace: str = "district"
    # Iceberg partitions of daily feeds: one per community-day, or one per community-month (fewer,
    # larger files once compacted; a superseded day is then rewritten inside its month's file).
    partition_granularity: Literal["day", "month"] = "day"
    key_file: Path = Path("keys/district.pem")  # signs requests to every hub that names no key of its own
    receipt_key_file: Path = Path("keys/receipts.pem")  # signs the receipts the district hands back
    workers: int = Field(8, ge=1)  # hubs pulled at once (network-bound; verification is the CPU part)
    commit_hubs: int = Field(130, ge=1)  # hubs pulled before each round of commits (bounds memory)
    # Partition versions per Iceberg commit at most: pyiceberg's write of one commit grows faster than
    # linearly with its partitions (260 community-days in one commit cost 4× the CPU of 8 commits of
    # 32; bench/district_day.py), and 32 keeps the snapshots few.
    commit_max_partitions: int = Field(32, ge=1)
    commit_max_bytes: int = Field(256 << 20, ge=1 << 20)
    lock_timeout_seconds: float = Field(60, gt=0)
    hubs: list[HubEntry] = []

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=config_file()))

    @model_validator(mode="after")
    def _distinct(self) -> DistrictSettings:
        seen: set[str] = set()
        for hub in self.hubs:
            if hub.community_id in seen:
                raise ValueError(f"hub {hub.community_id} is listed twice")
            seen.add(hub.community_id)
        return self

    def resolve(self, path: Path) -> Path:
        """An absolute path: relative ones are taken from the district's home."""
        return path if path.is_absolute() else (self.home_path / path).resolve()

    @cached_property
    def home_path(self) -> Path:
        return self.home.resolve()

    @property
    def catalog_url(self) -> str:
        return self.catalog_uri or f"sqlite:///{self.home_path / 'catalog.db'}"

    @property
    def warehouse_location(self) -> str:
        if self.warehouse:
            return self.warehouse if "://" in self.warehouse else Path(self.warehouse).resolve().as_uri()
        return (self.home_path / "warehouse").as_uri()

    def hub(self, community_id: str) -> HubEntry:
        for hub in self.hubs:
            if hub.community_id == community_id:
                return hub
        from kernel.errors import ConfigError

        raise ConfigError(f"no hub {community_id!r} in the district's config; add it under [[hubs]]")


def load_district_settings(**overrides: Any) -> DistrictSettings:
    """The settings from the TOML file and the environment (overrides win)."""
    return DistrictSettings(**overrides)
