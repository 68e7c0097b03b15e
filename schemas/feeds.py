"""Feed definitions (schemas/feeds/*.yaml): what a curated feed contains and how it is partitioned."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ValidationError

from neuron.errors import ConfigError
from schemas.contract import Description, FieldType

FEEDS_DIR = Path(__file__).resolve().parent / "feeds"


class FeedField(BaseModel):
    """One column of a feed, as documented to consumers."""

    name: str
    type: FieldType | Literal["date"]
    unit: str | None = None
    description: Description


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

    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]


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
