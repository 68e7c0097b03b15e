"""The JSON answers of the public and catalog routes, as documented in /openapi.json.

Routes return plain dicts; these models describe them (schemathesis checks that every
answer conforms). Objects are open (`Open`): new members may be added without breaking
consumers, documented members may not change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from api.openapi import Open


class Health(Open):
    """Liveness, and whether the control database answers."""

    status: str
    control_db: str


class Jwk(Open):
    """One of the hub's Ed25519 public keys."""

    kty: str
    crv: str
    x: str
    kid: str


class Jwks(Open):
    """The hub's signing keys (every key whose signatures may still be in use)."""

    keys: list[Jwk]


class Text(Open):
    """A text in Chinese and English."""

    zh: str
    en: str


class FeedQuality(Open):
    """A feed's data quality, by the rules of `neuron quality` (its worst source decides)."""

    status: Literal["ok", "warn", "not_connected", "stale", "fail"] = Field(
        description="By the rules of the quality report: ok; warn; not_connected (never loaded, or granted but "
        "never published); stale (loaded before, nothing new for more than 4 windows); fail (the newest batch "
        "was rejected)."
    )
    period: str | None = Field(
        None,
        description='The period the hub counts its day over, as every view states it: "2026-12-07 00:00–24:00 '
        'Asia/Shanghai".',
    )
    freshness_seconds: int | None = Field(
        description="Seconds since the end of the newest window loaded from every source; null: never loaded."
    )
    checked_at: datetime = Field(description="When the status was computed (the hub reuses it for up to 30 s).")


class CatalogEntry(Open):
    """A feed the caller's policy grants, with its freshness."""

    name: str
    title: Text
    cadence: str
    version: int
    watermark: datetime | None
    partitions: int
    quality: FeedQuality
    # The de-identification report of the caller's latest release (GB/T 42460-2023 spirit):
    # quasi-identifiers, k achieved, re-identification risk, suppression, categories, basis.
    deidentification: dict[str, Any] | None = None


class Catalog(Open):
    """The caller's catalog."""

    feeds: list[CatalogEntry]


class FeedField(Open):
    """A field the caller receives and its treatment under the caller's policy."""

    name: str
    meaning: Text
    description: Text  # the same as `meaning` (the name earlier clients read)
    unit: str | None = None
    type: str  # the feed's logical type
    parquet_type: str  # the Arrow/Parquet type of the column in the files, as treated
    privacy: str  # the field's privacy class
    treatment: Any  # the operator and its parameters
    treatment_text: Text  # what was done to the value, in Chinese and English
    legal_basis: str


class FeedDetail(Open):
    """One feed as the caller receives it, and under which policy."""

    name: str
    version: int
    title: Text
    description: Text
    cadence: str
    partition_by: list[str]
    fields: list[FeedField]
    policy: dict[str, Any]
    legal_basis: str
    pipl_art73: str | None = None  # "anonymised" or "de-identified": the caller's view under PIPL Art. 73
    watermark: datetime | None
    partitions: int
    quality: FeedQuality


class Change(Open):
    """A partition version published for the caller."""

    id: str
    href: str
    partition: str
    version: int
    supersedes: int | None
    rows: int
    sha256: str
    watermark: datetime | None
    published_at: datetime
    policy_fingerprint: str
    cursor: str


class Changes(Open):
    """The caller's change log of one feed after a cursor."""

    feed: str
    changes: list[Change]
    next: str
