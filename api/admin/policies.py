"""The policies page: each consumer's sharing policy as people read it, and its history.

The policy files are the rule; the control database remembers each version the hub has
seen: a fingerprint different from the consumer's last one recorded (a new rule, or a
return to an earlier one) is recorded the first time the console or the command line
sees it, with who was there, so the page can say when a rule changed and what changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from kernel.errors import ConfigError
from privacy.jws import canonical_json
from privacy.policy import Policy, load_policy_file
from schemas.feeds import load_feeds
from warehouse.audit import append_audit
from warehouse.control import session_scope
from warehouse.models import PolicyVersion


@dataclass(frozen=True)
class FieldRule:
    """One field of one granted feed: the operator and its parameters."""

    field: str
    operator: str
    params: str


@dataclass(frozen=True)
class FeedRules:
    """A feed granted to a consumer."""

    feed: str
    k: int | None
    fields: list[FieldRule]


@dataclass(frozen=True)
class Change:
    """One difference between two versions of a policy: where, before, after."""

    where: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class VersionSeen:
    """A version in the history, with what changed from the one before it."""

    version: int
    fingerprint: str
    seen_at: datetime
    actor: str
    changes: list[Change]


def current_policies(policies_dir: Path) -> tuple[dict[str, Policy], list[str]]:
    """The policy files as they are now (not the process's cached copy), and any that fail to load."""
    policies: dict[str, Policy] = {}
    problems: list[str] = []
    feeds = load_feeds()
    for path in sorted(policies_dir.glob("*.yaml")):
        try:
            policy = load_policy_file(path, feeds)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        policies[policy.consumer] = policy
    return policies, problems


def policy_body(policy: Policy) -> dict[str, Any]:
    """What the fingerprint covers."""
    return policy.model_dump(exclude={"source"}, exclude_none=True)


def feed_rules(policy: Policy) -> list[FeedRules]:
    """The policy's grants, feed by feed, field by field."""
    rules = []
    for feed, grant in sorted(policy.feeds.items()):
        fields = []
        for name in grant.fields:
            described = policy.treatment(feed, name)
            operator = described.pop("op")
            params = ", ".join(f"{k}={v}" for k, v in described.items())
            fields.append(FieldRule(name, operator, params))
        rules.append(FeedRules(feed, grant.k, fields))
    return rules


def record_versions(url: str, policies: dict[str, Policy], actor: str, now: datetime) -> int:
    """Remember every policy whose fingerprint differs from the last one recorded for its
    consumer (a new rule, or a return to an earlier one); how many were."""
    added = 0
    for policy in policies.values():
        with session_scope(url) as session:
            last = session.execute(
                select(PolicyVersion.fingerprint)
                .where(PolicyVersion.consumer == policy.consumer)
                .order_by(PolicyVersion.id.desc())
                .limit(1)
            ).scalar()
            if last == policy.fingerprint:
                continue
            session.add(
                PolicyVersion(
                    consumer=policy.consumer,
                    fingerprint=policy.fingerprint,
                    version=policy.version,
                    body=canonical_json(policy_body(policy)).decode(),
                    seen_at=now,
                    actor=actor,
                )
            )
            # A policy change is a sharing event: in the audit chain too (issue 19).
            detail = {"consumer": policy.consumer, "fingerprint": policy.fingerprint, "version": policy.version}
            append_audit(
                session, actor=actor, action="policy_changed", outcome="ok" if last else "first", detail=detail, at=now
            )
            added += 1
    return added


def known_versions(url: str) -> dict[str, int]:
    """The version number of every policy fingerprint recorded, for naming the rule of an export."""
    with session_scope(url) as session:
        return dict(session.execute(select(PolicyVersion.fingerprint, PolicyVersion.version)).tuples().all())


def history(url: str, consumer: str) -> list[VersionSeen]:
    """The versions seen of a consumer's policy, newest first, each with its changes."""
    with session_scope(url) as session:
        rows = session.execute(
            select(PolicyVersion).where(PolicyVersion.consumer == consumer).order_by(PolicyVersion.id)
        ).scalars()
        seen = [(r.version, r.fingerprint, r.seen_at, r.actor, json.loads(r.body)) for r in rows]
    out, before = [], None
    for version, fingerprint, seen_at, actor, body in seen:
        out.append(VersionSeen(version, fingerprint, seen_at, actor, diff(before, body) if before else []))
        before = body
    return out[::-1]


def _flatten(node: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(node, dict) and node and not ("op" in node and prefix.count(".fields.") == 1):
        flat: dict[str, str] = {}
        for key, value in node.items():
            flat |= _flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return flat
    return {prefix: node if isinstance(node, str) else json.dumps(node, ensure_ascii=False, sort_keys=True)}


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """What changed between two policy bodies, one line per field, grant or setting."""
    old, new = _flatten(before), _flatten(after)
    keys = sorted(old.keys() | new.keys())
    return [Change(key, old.get(key), new.get(key)) for key in keys if old.get(key) != new.get(key)]
