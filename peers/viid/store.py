"""The cascade's durable state in the control database: subscriptions, the outbox, passes queued.

Passes are queued in one transaction with the vendor cursor: either a poll's passes are in the
outbox, marked as seen and the cursor moved, or none of it (the next poll reads them again).
An acknowledgement deletes its outbox row and appends the export to the audit log in one
transaction: an acknowledged notification is never sent again, and every one is audited.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from peers.viid.protocol import ACTIVE, CANCELLED, EXPIRED, notification_id, viid_time
from peers.viid.records import FEED, ChannelPass
from warehouse.audit import append_audit
from warehouse.control import engine_for
from warehouse.models import Cursor
from warehouse.models.viid import ViidNotification, ViidPassSeen, ViidSubscription

CURSOR_STREAM = "viid.vehicle_passes"  # the channel's own vendor cursor, apart from the batch pipeline's


@dataclass(frozen=True)
class Subscription:
    subscribe_id: str
    title: str
    resource_class: int
    resource_uris: tuple[str, ...]
    receive_addr: str
    begin_time: datetime
    end_time: datetime
    status: int
    body: dict[str, Any]

    @classmethod
    def of(cls, row: ViidSubscription) -> Subscription:
        body = json.loads(row.body)
        uris = tuple(u.strip() for u in row.resource_uri.split(",") if u.strip())
        return cls(
            row.subscribe_id,
            str(body.get("Title") or ""),
            row.resource_class,
            uris,
            row.receive_addr,
            row.begin_time,
            row.end_time,
            row.status,
            body,
        )


@dataclass(frozen=True)
class Pending:
    seq: int
    notification_id: str
    body: dict[str, Any]
    objects: int
    attempts: int


class ViidStore:
    def __init__(self, url: str) -> None:
        self.sessions = sessionmaker(engine_for(url), expire_on_commit=False)

    def _session(self) -> Session:
        return self.sessions()

    # --- subscriptions ----------------------------------------------------------------------

    def save_subscription(self, row: ViidSubscription) -> None:
        with self._session() as session, session.begin():
            # Write first, read never: on SQLite a transaction that reads and then writes fails at
            # once (SQLITE_BUSY, no waiting) if another connection committed in between.
            session.execute(delete(ViidSubscription).where(ViidSubscription.subscribe_id == row.subscribe_id))
            session.add(row)

    def set_status(self, subscribe_id: str, status: int, body: dict[str, Any] | None = None) -> bool:
        """Cancel or expire a subscription (its queued notifications are dropped); False if unknown."""
        now = datetime.now(UTC)
        values: dict[str, Any] = {"status": status, "updated_at": now}
        if body is not None:
            values["body"] = json.dumps(body, ensure_ascii=False)
        with self._session() as session, session.begin():
            found = session.execute(
                update(ViidSubscription).where(ViidSubscription.subscribe_id == subscribe_id).values(**values)
            )
            if not getattr(found, "rowcount", 0):
                return False
            # After a cancel or expiry nothing more is pushed (GA/T 1400.4 cascade, GAT1400-cascade.md §7.4).
            session.execute(delete(ViidNotification).where(ViidNotification.subscribe_id == subscribe_id))
        return True

    def subscriptions(self) -> list[Subscription]:
        with self._session() as session:
            rows = session.execute(select(ViidSubscription).order_by(ViidSubscription.created_at)).scalars()
            return [Subscription.of(r) for r in rows]

    def active(self, now: datetime) -> list[Subscription]:
        """Active subscriptions; those past their EndTime become expired here."""
        found = []
        for sub in self.subscriptions():
            if sub.status != ACTIVE:
                continue
            if sub.end_time <= now:
                self.set_status(sub.subscribe_id, EXPIRED, sub.body | {"SubscribeStatus": EXPIRED})
                continue
            found.append(sub)
        return found

    # --- the poll: vendor → outbox ----------------------------------------------------------

    def cursor(self, community_id: str) -> datetime | None:
        with self._session() as session:
            row = session.get(Cursor, (CURSOR_STREAM, community_id))
            return datetime.fromisoformat(row.value) if row else None

    def queue(
        self,
        community_id: str,
        passes: list[ChannelPass],
        until: datetime,
        routes: Callable[[ChannelPass], Iterable[Subscription]],
        unit_code: str,
        max_objects: int,
    ) -> list[tuple[str, list[ChannelPass]]]:
        """Queue the passes not queued before, one notification per subscription and `max_objects`,
        and move the cursor to `until`; returns (NotificationID, passes) of each notification queued."""
        now = datetime.now(UTC)
        queued: list[tuple[str, list[ChannelPass]]] = []
        with self._session() as session, session.begin():
            # The cursor first: the write lock before any read (see save_subscription).
            moved = session.execute(
                update(Cursor)
                .where(Cursor.stream == CURSOR_STREAM, Cursor.community_id == community_id)
                .values(value=until.isoformat(), updated_at=now)
            )
            if not getattr(moved, "rowcount", 0):
                session.add(
                    Cursor(stream=CURSOR_STREAM, community_id=community_id, value=until.isoformat(), updated_at=now)
                )
                session.flush()
            keys = [p.record_key for p in passes]
            known: set[str] = set()
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                known |= set(
                    session.execute(select(ViidPassSeen.record_key).where(ViidPassSeen.record_key.in_(chunk))).scalars()
                )
            fresh, taken = [], set(known)
            for p in passes:
                if p.record_key not in taken:
                    taken.add(p.record_key)
                    fresh.append(p)
            session.add_all(ViidPassSeen(record_key=p.record_key, seen_at=now) for p in fresh)
            per_subscription: dict[str, tuple[Subscription, list[ChannelPass]]] = {}
            for p in fresh:
                for sub in routes(p):
                    per_subscription.setdefault(sub.subscribe_id, (sub, []))[1].append(p)
            for sub, chosen in per_subscription.values():
                for start in range(0, len(chosen), max_objects):
                    group = chosen[start : start + max_objects]
                    queued.append((self._add_notification(session, sub, group, unit_code, now), group))
        return queued

    @staticmethod
    def _add_notification(
        session: Session, sub: Subscription, group: list[ChannelPass], unit_code: str, now: datetime
    ) -> str:
        row = ViidNotification(
            subscribe_id=sub.subscribe_id,
            notification_id=uuid.uuid4().hex[:33],  # replaced below, once the row has its seq
            body="",
            objects=len(group),
            created_at=now,
            attempts=0,
        )
        session.add(row)
        session.flush()
        nid = notification_id(unit_code, now, row.seq)
        vehicles = [p.vehicle for p in group]
        body = {
            "NotificationID": nid,
            "SubscribeID": sub.subscribe_id,
            "Title": sub.title,
            "TriggerTime": viid_time(now),
            "InfoIDs": ",".join(str(v["MotorVehicleID"]) for v in vehicles),
            "ExecuteOperation": 1,  # add
            "MotorVehicleObjectList": {"MotorVehicleObject": vehicles},
        }
        row.notification_id = nid
        row.body = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        return nid

    # --- the push: outbox → upper -------------------------------------------------------------

    def pending(self, subscribe_id: str, limit: int) -> list[Pending]:
        """The oldest notifications not yet acknowledged (nor refused) of a subscription."""
        query = (
            select(ViidNotification)
            .where(ViidNotification.subscribe_id == subscribe_id, ViidNotification.refused.is_(None))
            .order_by(ViidNotification.seq)
            .limit(limit)
        )
        with self._session() as session:
            rows = session.execute(query).scalars().all()
            return [Pending(r.seq, r.notification_id, json.loads(r.body), r.objects, r.attempts) for r in rows]

    def attempted(self, seqs: list[int]) -> None:
        with self._session() as session, session.begin():
            session.execute(
                update(ViidNotification)
                .where(ViidNotification.seq.in_(seqs))
                .values(attempts=ViidNotification.attempts + 1)
            )

    def acknowledge(
        self, acked: list[Pending], sub: Subscription, consumer: str, fingerprint: str, fields: list[str]
    ) -> None:
        """Delete acknowledged notifications and audit each as an export, in one transaction."""
        now = datetime.now(UTC)
        path = urlsplit(sub.receive_addr).path or "/"
        with self._session() as session, session.begin():
            session.execute(delete(ViidNotification).where(ViidNotification.seq.in_([p.seq for p in acked])))
            for p in acked:
                digest = hashlib.sha256(json.dumps(p.body, ensure_ascii=False, separators=(",", ":")).encode())
                append_audit(
                    session,
                    actor=consumer,
                    action="push",
                    outcome="ok",
                    method="POST",
                    path=path,
                    feed=FEED,
                    status_code=200,
                    rows=p.objects,
                    policy_fingerprint=fingerprint,
                    detail={
                        "channel": "viid",
                        "format": "viid",
                        "fields": fields,
                        "notification_id": p.notification_id,
                        "subscribe_id": sub.subscribe_id,
                        "attempts": p.attempts + 1,  # the failed ones recorded, and this one
                        "response_digest": "sha256:" + digest.hexdigest(),
                    },
                    at=now,
                )

    def refuse(self, pending: Pending, reason: str) -> None:
        """The upper refused the content (StatusCode 8): kept for the operator, never resent."""
        with self._session() as session, session.begin():
            session.execute(
                update(ViidNotification).where(ViidNotification.seq == pending.seq).values(refused=reason[:200])
            )

    def backlog(self) -> int:
        with self._session() as session:
            rows = session.execute(select(ViidNotification.seq).where(ViidNotification.refused.is_(None))).all()
            return len(rows)

    def purge_seen(self, days: int) -> int:
        """Forget queued passes older than `days`, and notifications refused as long ago."""
        cutoff = datetime.now(UTC) - timedelta(days=days)
        with self._session() as session, session.begin():
            result = session.execute(delete(ViidPassSeen).where(ViidPassSeen.seen_at < cutoff))
            session.execute(
                delete(ViidNotification).where(
                    ViidNotification.refused.is_not(None), ViidNotification.created_at < cutoff
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)


def cancelled_body(body: dict[str, Any], cancel: dict[str, Any]) -> dict[str, Any]:
    """The SubscribeObject as listed after a cancel: the stored one with the cancel's fields."""
    keep = ("SubscribeCancelOrg", "SubscribeCancelPerson", "CancelTime", "CancelReason")
    return body | {k: cancel[k] for k in keep if k in cancel} | {"OperateType": 1, "SubscribeStatus": CANCELLED}
