"""Alarms as Alert entities, as they happen: the relay's `ngsi-ld:<consumer>` outbox rows
(relay/alert_outbox.py), rendered by api/format_ngsi.alert under the consumer's policy for the
`safety.alarms` feed, upserted, and deleted once the broker took them (or they became dead
letters). Read every `alert_poll_seconds` (0.2 s): an alarm reaches the broker well within a
second of the relay's commit.

The policy is applied as the feed's publisher applies it, field by field, with one difference
the real-time path cannot avoid: only fields kept as they are (`keep`) go out here. A field the
policy seals, pseudonymises or generalises is left out of the real-time Alert; the published
`safety.alarms` partitions, which carry it treated, complete the same entity when the feed
push reaches them (an upsert with options=update adds the attribute).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from api.format_ngsi import alert as alert_entities
from kernel.errors import NeuronError
from peers.ngsi_ld.client import UPSERT_PATH
from peers.ngsi_ld.consumer import ConsumerPush, Round
from schemas.feeds import load_feeds

log = logging.getLogger(__name__)
FEED = "safety.alarms"
TIMES = ("raised_at", "acknowledged_at", "cleared_at")


def alert_row(state: dict[str, Any], kept: set[str]) -> dict[str, Any]:
    """The outbox state as a `safety.alarms` row of the fields kept, with the feed's derived times."""
    row = {k: datetime.fromisoformat(v) if k in TIMES and isinstance(v, str) else v for k, v in state.items()}
    raised, acked, cleared = row.get("raised_at"), row.get("acknowledged_at"), row.get("cleared_at")
    if isinstance(raised, datetime):
        row["response_seconds"] = int((acked - raised).total_seconds()) if isinstance(acked, datetime) else None
        row["resolution_seconds"] = int((cleared - raised).total_seconds()) if isinstance(cleared, datetime) else None
    return {name: value for name, value in row.items() if name in kept}


def kept_fields(consumer: ConsumerPush) -> set[str]:
    """The `safety.alarms` fields the consumer's policy grants as they are (`keep`)."""
    if FEED not in consumer.policy.feeds:
        return set()
    feed = load_feeds()[FEED]
    return {f for f in consumer.policy.published_fields(feed) if consumer.policy.operator(FEED, f).name == "keep"}


def push_alerts(consumer: ConsumerPush, kept: set[str]) -> int:
    """Push the waiting Alert states (one round, at most a chunk); how many outbox rows were settled."""
    outbox = consumer.push.alert_outbox
    rows = consumer.store.alerts(outbox, consumer.push.chunk_size)
    if not rows:
        return 0
    if not kept:
        # The policy grants no alarms: nothing leaves; the rows are settled unsent.
        log.warning("push %s: %d alarm(s) not sent (its policy grants no safety.alarms)", consumer.push.name, len(rows))
        consumer.store.done_alerts(outbox, [r.seq for r in rows])
        return len(rows)
    rendered = {r.seq: list(alert_entities(alert_row(r.row, kept))) for r in rows}
    entities = [e for found in rendered.values() for e in found]
    done = Round("alert", FEED, UPSERT_PATH, fields=sorted(kept), entities=len(entities))
    try:
        consumer.pusher.upsert(entities, done.upsert)
        consumer.store.add_dead(done.upsert.dead, "alert", FEED)
    except NeuronError as exc:
        done.error = type(exc).__name__
        raise
    finally:
        if entities:
            consumer.record(done)
    # Every row of an alarm is settled once its latest state was taken (or dead-lettered); an
    # alarm whose entity could not be rendered (its raise time not granted) is settled unsent.
    settled = set(done.upsert.succeeded) | {str(d.entity.get("id")) for d in done.upsert.dead}
    consumer.store.done_alerts(
        outbox, [seq for seq, found in rendered.items() if all(e["id"] in settled for e in found)]
    )
    return len(rows)
