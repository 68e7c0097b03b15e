"""The console's domain words for people: feeds, fields, streams, consumers, treatments and
values, in the reader's language, from the texts the feeds (schemas/feeds/*.yaml), the
contracts and the sharing policies carry themselves; the catalogs (api.admin.i18n) hold only
the console's own words around them.

Values are shown as a community admin reads them: times in the community's time zone, money
in yuan (the feeds count fen), yes/no, and a treated value (sealed, pseudonym) marked so the
legend next to its table can explain it. The raw value stays in the page as `data-value`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from api.admin.overview import shown
from kernel.errors import ConfigError, NeuronError
from privacy.policy import Policy, load_policies
from schemas.feeds import Feed, FeedField, load_feeds

# "(UTC)" in a field's description says how the feed stores the time; the console shows it
# in local time instead, and says so.
UTC_NOTE = re.compile(r"\s*[（(]UTC[）)]")
FEN_NOTE = re.compile(r"\s*[（(](分|fen)[）)]")
ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$")
SEALED = re.compile(r"^nhs\d+\.")  # a sealed value: nhs<version>.<key id>.<ciphertext> (privacy.seal)


@cache
def _contract(stream: str) -> Any:
    from schemas.contract import load_contract

    try:
        return load_contract(stream)
    except (NeuronError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class Treatment:
    """How one field reaches one consumer, for people: a short name and what it means."""

    operator: str
    short: str
    explained: str


class Labels:
    """Names and values in one language, for one hub's policies and time zone."""

    def __init__(self, language: str, t: Callable[..., str], policies_dir: Path, timezone: str) -> None:
        self.language, self.t = language, t
        self.zone = ZoneInfo(timezone)
        self.policies_dir = policies_dir

    # -- names ------------------------------------------------------------------------------

    def policies(self) -> dict[str, Policy]:
        try:
            return load_policies(self.policies_dir)
        except (ConfigError, OSError):  # the policies page names the broken file itself
            return {}

    def consumer(self, name: str | None) -> str:
        """A consumer's short name from its policy (display_name), else its title, else its id."""
        if not name:
            return "—"
        policy = self.policies().get(name)
        if policy is None:
            return name
        if policy.display_name is not None:
            return str(getattr(policy.display_name, self.language))
        return policy.title

    def legal_basis(self, policy: Policy) -> str:
        if policy.legal_basis_text is not None:
            return str(getattr(policy.legal_basis_text, self.language))
        return policy.legal_basis

    def actor(self, actor: str | None) -> str:
        """Who did something: a consumer, a console user, the command line, a source system."""
        if not actor:
            return "—"
        if actor == "console":  # a sign-in that named no known account
            return self.t("actor.console_unknown")
        if actor.startswith("console:"):
            return self.t("actor.console", name=actor.removeprefix("console:"))
        if actor in self.policies():
            return self.consumer(actor)
        from api.admin import i18n

        return self.t(f"actor.{actor}") if i18n.has(f"actor.{actor}") else actor

    def word(self, prefix: str, name: str | None) -> str:
        """A coded name (`outcome.ok`, `action.consent`) in words when the catalogs know it, else as is."""
        from api.admin import i18n

        if not name:
            return "—"
        key = f"{prefix}.{name}"
        return self.t(key) if i18n.has(key, self.language) else name

    def function(self, name: str | None) -> str:
        """An optional function households consent to (`smoke_gas`), in words."""
        return self.word("fn", name)

    def resource(self, path: str | None) -> str:
        """What an API path serves (`/.well-known/jwks.json`: the hub's public keys), in words;
        the page keeps the path itself beside it for an auditor."""
        if not path:
            return "—"
        parts = [p for p in path.split("?", 1)[0].split("/") if p]
        if parts[:1] == ["v1"]:
            parts = parts[1:]
        if len(parts) >= 2 and parts[0] == "feeds":  # /v1/feeds/<feed>[/records|changes|partitions/…]
            key = f"resource.feed_{parts[2] if len(parts) > 2 else 'feed'}"
            return self.t(key if self._has(key) else "resource.feed_feed", feed=self.feed(parts[1]))
        key = "resource." + ("_".join(parts).replace(".", "_").replace("-", "_").strip("_") or "root")
        return self.t(key) if self._has(key) else self.t("resource.other")

    def _has(self, key: str) -> bool:
        from api.admin import i18n

        return i18n.has(key, self.language)

    def feed(self, name: str | None) -> str:
        found = load_feeds().get(name or "")
        return str(getattr(found.title, self.language)) if found else (name or "—")

    def stream(self, name: str | None) -> str:
        contract = _contract(name or "")
        return str(getattr(contract.title, self.language)) if contract else (name or "—")

    def field(self, feed: str | None, name: str) -> str:
        """A feed's column as its description names it, in local time and yuan where it applies."""
        described = _feed_field(feed, name)
        if described is None:
            return self.stream_field(None, name)
        text = str(getattr(described.description, self.language))
        if described.type == "timestamp" and UTC_NOTE.search(text):
            text = UTC_NOTE.sub("", text) + self.t("unit.local_time")
        if described.unit == "fen":
            text = FEN_NOTE.sub("", text) + self.t("unit.yuan")
        return text

    def stream_field(self, stream: str | None, name: str) -> str:
        """A source stream's field (in a quarantine reason), by its contract's description."""
        contracts = [_contract(stream)] if stream else []
        for contract in contracts:
            for f in getattr(contract, "fields", []):
                if f.name == name:
                    return str(getattr(f.description, self.language))
        return name

    def reason(self, stream: str | None, reason: str) -> str:
        """A quarantine reason ("plate_no: is missing") with the field named for people."""
        from warehouse.quality import reason_zh

        name, sep, words = reason.partition(": ")
        if self.language == "zh":
            localised = reason_zh(reason)
            return localised.replace(name, self.stream_field(stream, name), 1) if sep else localised
        return f"{self.stream_field(stream, name)}: {words}" if sep else reason

    def partition(self, key: str | None) -> str:
        """A partition key (`community_id=…/day=…`) by its values alone: the columns are the feed's."""
        if not key:
            return "—"
        return " · ".join(part.partition("=")[2] or part for part in key.split("/"))

    # -- treatments -------------------------------------------------------------------------

    def treatment(self, consumer: str, feed: str, field: str) -> Treatment:
        """How `consumer` receives `feed`.`field` under its policy now."""
        policy = self.policies().get(consumer)
        if policy is None or not policy.grants(feed):
            return Treatment("keep", self.t("op.keep"), self.t("treat.keep"))
        described = policy.treatment(feed, field)
        return self.explain(consumer, described, policy.feeds[feed].k)

    def explain(self, consumer: str, described: dict[str, Any], k: int | None = None) -> Treatment:
        op = str(described.get("op"))
        t = self.t
        who = self.consumer(consumer)
        if op == "generalise" and described.get("to"):
            to = t(f"to.{described['to']}")
            return Treatment(op, t("op.generalise_to", to=to), t("treat.generalise", to=to))
        if op == "seal_to":
            return Treatment(op, t("op.seal_to_who", who=who), t("treat.seal_to", who=who))
        if op == "aggregate":
            return Treatment(op, t("op.aggregate"), t("treat.aggregate", k=k or 5))
        if op == "mask":
            kept = (described.get("keep_start") or 0, described.get("keep_end") or 0)
            return Treatment(op, t("op.mask"), t("treat.mask", start=kept[0], end=kept[1]))
        return Treatment(op, t(f"op.{op}"), t(f"treat.{op}"))

    def where(self, consumer: str, where: str) -> str:
        """A place in a policy (`feeds.<feed>.fields.<field>`, `retention_days`) for people."""
        from api.admin import i18n

        if where.startswith("feeds."):
            rest = where.removeprefix("feeds.")
            feed = next((f for f in sorted(load_feeds(), key=len, reverse=True) if rest.startswith(f)), None)
            if feed is None:
                return where
            parts = rest.removeprefix(feed).strip(".").split(".")
            named = [self.feed(feed)]
            if parts[:1] == ["fields"] and len(parts) > 1:
                named.append(self.field(feed, parts[1]))
            elif parts and parts[0]:
                key = f"policy_key.{parts[0]}"
                named.append(self.t(key) if i18n.has(key) else parts[0])
                named += parts[1:]
            return " › ".join(named)
        key = f"policy_key.{where.split('.')[0]}"
        return self.t(key) if i18n.has(key) else where

    def setting(self, consumer: str, where: str, value: str | None) -> str:
        """A policy setting's value for people: a treatment named, anything else as it is."""
        if value is None:
            return "—"
        if ".fields." in where:
            import json

            try:
                spec = json.loads(value) if value.startswith("{") else {"op": value}
            except ValueError:
                return value
            return self.explain(consumer, spec).short
        return value

    # -- values -----------------------------------------------------------------------------

    def units(self, feed: str | None, fields: list[str]) -> set[str]:
        """Which of "timestamp" (shown in local time) and "fen" (shown in yuan) `fields` hold."""
        found = [described for f in fields if (described := _feed_field(feed, f)) is not None]
        return {"timestamp" for f in found if f.type == "timestamp"} | {"fen" for f in found if f.unit == "fen"}

    def moment(self, value: datetime | str | None, seconds: bool = False) -> str:
        """An instant in the community's local time (a date alone stays a date)."""
        if value is None or value == "":
            return "—"
        if isinstance(value, str):
            if not ISO_MOMENT.match(value):
                return value
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        local = value.astimezone(self.zone)
        return local.strftime("%Y-%m-%d %H:%M:%S" if seconds or local.second else "%Y-%m-%d %H:%M")

    def value(self, feed: str | None, field: str, value: Any, operator: str = "keep") -> str:
        """A cell of an export as people read it."""
        if value is None:
            return "—"
        described = _feed_field(feed, field)
        if operator == "seal_to" or (isinstance(value, str) and SEALED.match(value) is not None):
            # A word, not an emoji: the hub's Chromium, and some phones, have no emoji font.
            return self.t("value.sealed", start=value[:12])
        if isinstance(value, bool):
            return self.t("common.yes") if value else self.t("common.no")
        if isinstance(value, datetime) or (isinstance(value, str) and ISO_MOMENT.match(value)):
            return self.moment(value)
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, str) and (coded := self._code(field, value)) is not None:
            return coded
        if described is not None and described.unit == "fen" and isinstance(value, int | float):
            return f"{Decimal(value) / 100:,.2f}"
        if isinstance(value, int):
            return f"{value:,}" if abs(value) >= 10_000 else str(value)
        return shown(value, self.language)

    def _code(self, field: str, value: str) -> str | None:
        """A coded value (`in`, `resident`, `smoke`) in words, when the catalogs know it."""
        from api.admin import i18n

        for key in (f"value.{field}.{value}", f"{field}.{value}"):
            if i18n.has(key, self.language):
                return self.t(key)
        return None

    def provided(self, column: str, value: Any, row: dict[str, Any] | None = None) -> str:
        """A cell of a table another module provides (quality, alarms, dead letters)."""
        row = row or {}
        if value is None or value == "":
            return "—"
        if column == "stream":
            return self.stream(str(value))
        if column == "consumer":
            return self.consumer(str(value))
        if column == "feed":
            return self.feed(str(value))
        if column in ("acknowledged_by", "actor", "source"):
            return self.actor(str(value))
        if column in ("family", "category", "channel", "function"):
            from api.admin import i18n

            key = f"{column}.{value}"
            return self.t(key) if i18n.has(key, self.language) else str(value)
        if column == "freshness_seconds" and isinstance(value, int | float):
            from warehouse.quality_rules import duration_text

            en, zh = duration_text(value)
            return zh if self.language == "zh" else en
        if column == "quarantined_by_reason" and isinstance(value, dict):
            stream = row.get("stream")
            parts = [self.t("quality.reason_rows", reason=self.reason(stream, str(r)), n=n) for r, n in value.items()]
            return self.t("common.list_sep").join(parts) or "—"
        if isinstance(value, bool):
            return self.t("common.yes") if value else self.t("common.no")
        if isinstance(value, datetime) or (isinstance(value, str) and ISO_MOMENT.match(value)):
            return self.moment(value)
        return shown(value, self.language)


def _feed_field(feed: str | None, name: str) -> FeedField | None:
    found: Feed | None = load_feeds().get(feed or "")
    if found is None:
        return None
    try:
        return found.field(name)
    except KeyError:
        return None
