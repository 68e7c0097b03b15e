"""Feed definitions (schemas/feeds/*.yaml): what a curated feed contains and how it is partitioned."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from kernel.errors import ConfigError
from schemas.contract import Description, FieldType, PrivacyClass

FEEDS_DIR = Path(__file__).resolve().parent / "feeds"

# The categories of sensitive personal information of GB/T 45574-2025 (数据安全技术 敏感个人信息
# 处理安全要求) that a feed's personal fields may fall in; "一般个人信息" otherwise.
SensitiveCategory = Literal["生物识别", "宗教信仰", "特定身份", "医疗健康", "金融账户", "行踪轨迹", "未成年人"]


class FeedField(BaseModel):
    """One column of a feed, as documented to consumers."""

    name: str
    type: FieldType | Literal["date"]
    unit: str | None = None
    description: Description
    # How identifying the column is (as in contracts); a direct field carries the staging
    # token of the contract field of the same name, never a raw value.
    privacy: PrivacyClass = PrivacyClass.PUBLIC
    sensitive_category: SensitiveCategory | None = None  # overrides the feed's, for this field


class Derivation(BaseModel):
    """A count of this feed that a consumer could also compute from another feed's rows: where
    it is suppressed here, it must not be recoverable there (the disclosure check)."""

    count: str  # the count field of this feed
    feed: str  # the other feed
    where: dict[str, list[str]]  # the other feed's rows that make up the count, by field values


class Total(BaseModel):
    """An additive relation between count fields of one row: total = sum(parts)."""

    total: str
    parts: list[str]


ConsentFunction = Literal["smoke_gas", "elderly_care"]


class InHome(BaseModel):
    """A feed carrying data of in-home devices (system 6): every consumer's policy must state the
    legal basis of it (privacy/policy.py), and rows under consent go only for households that
    opted in to the function (warehouse/consent.py).

    `consent` names the function whose opt-in covers the rows: one for the whole feed, or, with
    `by`, one per value of that field (an alarm's category: smoke and gas are `smoke_gas`, a
    fall `elderly_care`); rows with other values are not in-home data. `household_field` is the
    mart column with the household's staging token, to check consent row by row; without it
    the mart counts only consenting households itself (care.elderly_daily).
    """

    model_config = ConfigDict(extra="forbid")

    by: str | None = None
    consent: ConsentFunction | dict[str, ConsentFunction]
    household_field: str | None = None

    def function_of(self, value: str | None = None) -> ConsentFunction | None:
        """The consent function covering a row (by its `by` field's value)."""
        if isinstance(self.consent, str):
            return self.consent
        return self.consent.get(value or "")

    @property
    def categories(self) -> list[str]:
        """The `by` field's values that are in-home data (empty for a whole-feed declaration)."""
        return [] if isinstance(self.consent, str) else sorted(self.consent)


class Feed(BaseModel):
    """A curated feed built by a mart and published per consumer."""

    name: str
    version: int
    title: Description
    description: Description
    mart: str  # the DuckDB table the mart SQL builds
    sources: list[str]  # the streams it is built from: their watermark is the feed's
    cadence: Literal["hourly", "daily", "monthly", "realtime"]
    partition_by: list[str]  # the partition key columns, in path order
    order_by: list[str]  # a total order, so the same rows always give the same bytes
    fields: list[FeedField]
    # aggregate: rows are counts (k-anonymity by small-cell suppression); microdata: rows are
    # events or people (k-anonymity checked on the quasi-identifiers before publishing).
    kind: Literal["aggregate", "microdata"] = "microdata"
    counts: list[str] = []  # aggregate feeds: the count fields small-cell suppression applies to
    totals: list[Total] = []  # relations between counts that suppression must not let undo it
    # Rows of households that have not opted in to this function are never published.
    consent: Literal["smoke_gas", "elderly_care"] | None = None
    household_field: str | None = None  # the mart column with the household's staging token
    in_home: InHome | None = None  # system 6 data: the legal basis each policy states (issue 16)
    # The GB/T 45574-2025 category of the feed's personal fields (direct, quasi, sensitive), for
    # the de-identification report of each release; a field may name its own.
    sensitive_category: SensitiveCategory | None = None
    derivable: list[Derivation] = []  # counts other feeds disclose too (privacy/disclosure.py)

    @model_validator(mode="after")
    def _names_are_fields(self) -> Feed:
        names = set(self.field_names())
        named = [*self.counts, *(n for t in self.totals for n in (t.total, *t.parts))]
        for name in named:
            if name not in self.counts or name not in names:
                raise ValueError(f"{name!r} is named as a count but is not a count field")
        if self.consent and not self.household_field:
            raise ValueError("a feed under consent needs household_field")
        if self.in_home is not None:
            if isinstance(self.in_home.consent, dict) and not (self.in_home.by and self.in_home.household_field):
                raise ValueError("in_home: consent per value needs `by` and `household_field`")
            for column in (self.in_home.by, self.in_home.household_field):
                if column is not None and column not in names:
                    raise ValueError(f"in_home: {column!r} is not a field")
        return self

    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> FeedField:
        """The field called `name`."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


@cache
def load_feeds() -> dict[str, Feed]:
    """Every feed of the catalog, by name."""
    feeds: dict[str, Feed] = {}
    for path in sorted(FEEDS_DIR.glob("*.yaml")):
        try:
            feed = Feed.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        except ValidationError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        if path.stem != feed.name:
            raise ConfigError(f"{path}: file name must be the feed name {feed.name!r}")
        feeds[feed.name] = feed
    return feeds


def feeds_built_from(stream: str) -> list[str]:
    """The feeds that a stream is a source of: what to publish after it loads."""
    return sorted(name for name, feed in load_feeds().items() if stream in feed.sources)
