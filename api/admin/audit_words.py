"""An audit entry told in the reader's words (issue 19): who (a consumer by its display name,
a console user, the hub), what (the action and its outcome in words), on what (a feed by its
title, an API path by what it serves) and the entry's detail item by item, each labelled.

A value a person does not read but may copy or compare (a key id, a fingerprint, a digest,
an API path, a file name) is kept apart as `code`: the pages show it in a <code> element
beside the words, the CSV shows the words where there are any. The entry's raw JSON stays on
its proof page, below this summary, for the auditor who recomputes its hash.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api.admin.audit_log import LogEntry
from api.admin.labels import Labels
from privacy.jws import canonical_json

# A value that is a machine name (snake_case, dotted) rather than words.
MACHINE = re.compile(r"^[a-z][a-z0-9]*(?:[._][a-z0-9]+)+$")
SHORT = ("consumer", "account", "role", "function", "request", "version", "reason", "key_id", "fingerprint")


@dataclass(frozen=True)
class Part:
    """One labelled item: its label, its value in words, and what to copy (or None)."""

    label: str
    words: str
    code: str | None = None

    def text(self, t: Callable[..., str]) -> str:
        """The item on one line, for the CSV."""
        return t("common.label", label=self.label, value=self.words or self.code or "")


def _short(value: str) -> str:
    return value[:19] + "…" if value.startswith("sha256:") and len(value) > 20 else value


def _label(labels: Labels, key: str) -> str:
    """A detail's key in words; one no catalog names yet keeps its name (in the raw JSON too)."""
    return labels.word("detail", key)


def detail_part(labels: Labels, key: str, value: Any, feed: str | None, short: bool = False) -> Part | None:
    """One item of an entry's detail, in words."""
    t, label = labels.t, _label(labels, key)
    if value is None or value == [] or value == {}:
        return None
    if key == "consumer":  # a consumer with no policy of its own has only its id: shown as one
        return named(label, labels.consumer(str(value)), str(value))
    if key == "function":
        return Part(label, labels.function(str(value)))
    if key == "role":
        return Part(label, labels.word("role", str(value)))
    if key in ("reason", "store", "protection", "format"):
        words = labels.word(f"{key}_word", str(value))  # a code the catalogs name, else shown as it is
        return Part(label, "" if words == value else words, str(value))
    if key == "fields" and isinstance(value, list):
        listed = t("common.list_sep").join(labels.field(feed, str(f)) for f in value)
        return Part(label, t("entry.n_fields", n=len(value)) if short else listed)
    if key == "partitions" and isinstance(value, list):
        if short:
            return Part(label, t("entry.n_partitions", n=len(value)))
        served = [
            f"{labels.partition(str(p.get('partition')))} v{p.get('version')}" for p in value if isinstance(p, dict)
        ]
        return Part(label, t("common.list_sep").join(served))
    if key == "partition":
        return Part(label, labels.partition(str(value)))
    if isinstance(value, bool):
        return Part(label, t("common.yes") if value else t("common.no"))
    if isinstance(value, int | float):
        return Part(label, str(value))
    if isinstance(value, str):
        if key == "account" and not MACHINE.match(value):
            return Part(label, value)
        return Part(label, "", _short(value) if short else value)
    return Part(label, "", json.dumps(value, ensure_ascii=False, sort_keys=True))


def summary(labels: Labels, entry: LogEntry) -> list[Part]:
    """The short line of the log's table: what was read, and the detail's telling items."""
    parts: list[Part] = []
    if entry.path and entry.kind in ("export", "refusal", "access"):
        parts.append(Part(labels.t("entry.field.path"), labels.resource(entry.path), entry.path.split("?", 1)[0]))
    for key in SHORT:
        if isinstance(entry.detail.get(key), str | int):
            found = detail_part(labels, key, entry.detail[key], entry.feed, short=True)
            parts += [found] if found else []
    for key in ("partitions", "purged_vault_objects"):
        if key in entry.detail:
            found = detail_part(labels, key, entry.detail[key], entry.feed, short=True)
            parts += [found] if found else []
    return parts


def summary_text(labels: Labels, entry: LogEntry) -> str:
    """The summary on one line of words (the CSV)."""
    return " · ".join(p.text(labels.t) for p in summary(labels, entry))


def facts(labels: Labels, entry: LogEntry, fields: dict[str, Any]) -> list[Part]:
    """Everything the entry says, item by item in words (the proof page, above its raw JSON)."""
    t = labels.t
    found = [
        Part(t("log.col.kind"), t(f"log.kind.{entry.kind}")),
        named(t("log.col.actor"), labels.actor(entry.actor), entry.actor),
        Part(t("log.col.action"), labels.word("action", entry.action)),
        Part(t("log.col.outcome"), outcome(labels, entry.outcome, entry.status_code)),
    ]
    if fields.get("method"):
        found.append(Part(t("entry.field.method"), labels.word("method", fields["method"]), fields["method"]))
    if fields.get("path"):
        found.append(Part(t("entry.field.path"), labels.resource(fields["path"]), fields["path"]))
    if entry.feed:
        found.append(Part(t("log.col.feed"), labels.feed(entry.feed), entry.feed))
    if entry.rows is not None:
        found.append(Part(t("log.col.rows"), str(entry.rows)))
    if fields.get("policy_fingerprint"):
        found.append(Part(t("entry.field.policy_fingerprint"), "", fields["policy_fingerprint"]))
    for key, value in (fields.get("detail") or {}).items():
        part = detail_part(labels, key, value, entry.feed)
        found += [part] if part else []
    return found


def named(label: str, words: str, raw: str) -> Part:
    """A name in words, or, where nothing names it (a consumer without a policy of its own),
    its id as code."""
    return Part(label, "", raw) if words == raw else Part(label, words)


def outcome(labels: Labels, name: str, status_code: int | None = None) -> str:
    """An outcome in words, with the HTTP status of a request."""
    words = labels.word("outcome", name)
    return labels.t("entry.with_status", outcome=words, status=status_code) if status_code else words


def hashed_json(entry_fields: dict[str, Any]) -> str:
    """The fields the entry's hash covers, as the canonical JSON that was hashed."""
    return canonical_json(entry_fields).decode()
