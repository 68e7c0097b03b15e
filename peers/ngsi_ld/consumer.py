"""One consumer's push: its broker client, retry policy, history ledger, policy and audit.

Every push round is an export in the audit log, as a pull of the same rows would be: the
consumer as actor, the feed, the rows (entities) delivered, the policy fingerprint, and in
`detail` the partitions served, the fields, the format, the digests of the bodies sent, and
what the broker refused (error types and counts, never a value).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from api.audit_writer import AuditRecord, AuditWriter
from kernel.errors import ConfigError
from kernel.push_settings import NgsiLdPush
from kernel.settings import Settings
from peers.ngsi_ld.batch import Pusher, PushOutcome, Sleep
from peers.ngsi_ld.client import BrokerClient
from peers.ngsi_ld.history import History, HistoryOutcome
from peers.ngsi_ld.store import PushStore
from privacy.policy import load_policies


@dataclass
class Round:
    """What one push round did, for its audit entry."""

    channel: str  # feed | alert
    feed: str
    path: str
    upsert: PushOutcome = field(default_factory=PushOutcome)
    history: HistoryOutcome | None = None
    partitions: list[dict[str, Any]] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    entities: int = 0
    error: str | None = None  # the exception's class when the round stopped early
    resend: dict[str, Any] | None = None  # a re-send of dead letters: who asked, how many (resend.py)

    @property
    def outcome(self) -> str:
        if self.error:
            return "error"
        dead = len(self.upsert.dead) + (len(self.history.dead) if self.history else 0)
        return "partial" if dead else "ok"


class ConsumerPush:
    """Everything one consumer's pushes share."""

    def __init__(self, settings: Settings, push: NgsiLdPush, sleep: Sleep = time.sleep) -> None:
        policy = load_policies(settings.policies_dir).get(push.policy_name)
        if policy is None:
            # Nothing leaves that a policy does not name.
            raise ConfigError(f"push.ngsi_ld {push.name}: no sharing policy for consumer {push.policy_name!r}")
        self.settings, self.push, self.policy = settings, push, policy
        self.client = BrokerClient(push)
        self.pusher = Pusher(self.client, sleep)
        self.store = PushStore(settings.control_url, push.name)
        self.history = History(self.client, self.store, sleep)
        self.audit = AuditWriter(settings.control_url)

    @property
    def fingerprint(self) -> str:
        return self.policy.fingerprint

    def granted(self) -> list[str]:
        """The configured feeds this consumer's policy grants."""
        return [name for name in self.push.feeds if name in self.policy.feeds]

    def record(self, done: Round) -> None:
        """Append the round's audit entry (an export, like a pull)."""
        upsert, history = done.upsert, done.history
        detail: dict[str, Any] = {
            "channel": done.channel,
            "format": "ngsi-ld",
            "broker": urlsplit(self.push.broker_url).netloc,  # host only: never credentials
            "tenant": self.push.tenant,
            "entities": done.entities,
            "delivered": len(upsert.succeeded),
            "requests": upsert.requests,
            "resent": upsert.resent,
            "body_digests": upsert.digests,
        }
        if done.partitions:
            detail["partitions"] = done.partitions
        if done.fields:
            detail["fields"] = done.fields
        if upsert.dead:
            detail["dead_letters"] = _count(d.error.kind for d in upsert.dead)
        if history is not None:
            detail["temporal"] = {
                "sent": history.sent,
                "skipped": history.skipped,
                "recovered": history.recovered,
                "requests": history.requests,
                "dead_letters": len(history.dead),
                "body_digests": history.digests,
            }
        if done.resend is not None:
            detail["resend"] = done.resend
        if done.error:
            detail["error"] = done.error
        record = AuditRecord(
            actor=self.push.name,
            action="push",
            outcome=done.outcome,
            at=datetime.now(UTC),
            method="POST",
            path=done.path,
            feed=done.feed,
            status_code=upsert.last_status,
            rows=len(upsert.succeeded),
            policy_fingerprint=self.fingerprint,
            detail=detail,
        )
        self.audit.write([record])


def _count(kinds: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    return counts
