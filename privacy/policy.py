"""Sharing policies (config/policies/*.yaml): what one consumer may receive, field by field.

Nothing is published that a policy does not name. A policy is checked against the feed
catalog when loaded (unknown feed, field or operator: a ConfigError naming file and
line), and fingerprinted, so every manifest and audit entry can say under which rule
data left the community.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from neuron.errors import ConfigError
from privacy.jws import canonical_json
from schemas.feeds import Feed, load_feeds

# The operators this hub applies at publish time. `keep` passes a field on as the mart
# has it; `drop` is the same as not naming the field, written out for the reader.
OPERATORS = {"keep", "drop"}


class FeedGrant(BaseModel):
    """One feed granted to a consumer and the operator applied to each field."""

    fields: dict[str, str]
    k: int | None = Field(None, ge=2)


class Policy(BaseModel):
    """A consumer's sharing policy."""

    consumer: str
    version: int
    title: str
    legal_basis: str
    retention_days: int = Field(ge=1)
    feeds: dict[str, FeedGrant]
    source: str = ""  # the file it came from, for error messages

    @property
    def fingerprint(self) -> str:
        """A hash of what the policy says (not of how the file is laid out)."""
        body = self.model_dump(exclude={"source"})
        return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()

    def grants(self, feed: str) -> bool:
        return feed in self.feeds

    def published_fields(self, feed: Feed) -> list[str]:
        """The feed's fields this consumer receives, in the feed's order."""
        grant = self.feeds[feed.name]
        return [f for f in feed.field_names() if grant.fields.get(f, "drop") != "drop"]


def _line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return 1


def load_policy_file(path: Path) -> Policy:
    """Read and check one policy file against the feed catalog."""
    text = path.read_text(encoding="utf-8")
    try:
        raw: Any = yaml.safe_load(text)
        policy = Policy.model_validate({**raw, "source": str(path)})
    except (ValidationError, yaml.YAMLError, TypeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    feeds = load_feeds()
    for feed_name, grant in policy.feeds.items():
        if feed_name not in feeds:
            raise ConfigError(f"{path}:{_line_of(text, feed_name)}: unknown feed {feed_name!r}")
        known = set(feeds[feed_name].field_names())
        for field, operator in grant.fields.items():
            line = _line_of(text, f"{field}:")
            if field not in known:
                raise ConfigError(f"{path}:{line}: feed {feed_name!r} has no field {field!r}")
            if operator not in OPERATORS:
                raise ConfigError(f"{path}:{line}: unknown operator {operator!r} for {feed_name}.{field}")
    return policy


@cache
def load_policies(policies_dir: Path) -> dict[str, Policy]:
    """Every policy in the folder, keyed by consumer name."""
    policies: dict[str, Policy] = {}
    for path in sorted(policies_dir.glob("*.yaml")):
        policy = load_policy_file(path)
        if policy.consumer in policies:
            raise ConfigError(f"{path}: a second policy for consumer {policy.consumer!r}")
        policies[policy.consumer] = policy
    return policies
