"""Feeds into the broker as they publish: the consumer's own published partitions, read and
rendered exactly as the pull API serves them in `format=ngsi-ld` (api/records.read_page with
the fields the policy grants, then api/format_ngsi), so the broker holds what a pull would give.

A cursor per (consumer, feed), the pull API's own (publications before `seq` done, `offset`
rows of `seq` done), moves only after the round's upserts, history and dead letters are
recorded: a crash or an unavailable broker sends the same rows again, which an upsert takes
idempotently and the history ledger does not write twice.
"""

from __future__ import annotations

from api.format_ngsi import entities as ngsi_entities
from api.records import Cursor, read_page
from kernel.errors import NeuronError
from peers.ngsi_ld.client import UPSERT_PATH
from peers.ngsi_ld.consumer import ConsumerPush, Round
from schemas.feeds import Feed, load_feeds
from warehouse.control import session_scope


def push_feed(consumer: ConsumerPush, feed: Feed) -> int | None:
    """Push the next page of the feed's publications; the entities rendered (None: caught up)."""
    policy, settings = consumer.policy, consumer.settings
    fields = policy.published_fields(feed)
    seq, offset = consumer.store.cursor(feed.name)
    with session_scope(settings.control_url) as session:
        position, limit = Cursor(seq, offset), consumer.push.page_rows
        page = read_page(session, settings.lake_path, policy.consumer, feed.name, fields, position, limit)
    if page.next_cursor == position:
        return None
    entities = ngsi_entities(page.rows, feed.name)
    done = Round("feed", feed.name, UPSERT_PATH, partitions=page.served, fields=fields, entities=len(entities))
    try:
        consumer.pusher.upsert(entities, done.upsert)
        if consumer.push.history:
            taken = set(done.upsert.succeeded)
            done.history = consumer.history.write([e for e in entities if e["id"] in taken])
        consumer.store.add_dead([*done.upsert.dead], "upsert", feed.name)
        if done.history is not None:
            consumer.store.add_dead(done.history.dead, "temporal", feed.name)
    except NeuronError as exc:
        done.error = type(exc).__name__
        raise
    finally:
        consumer.record(done)
    consumer.store.save_cursor(feed.name, page.next_cursor.seq, page.next_cursor.offset)
    return len(entities)


def push_feeds(consumer: ConsumerPush) -> int:
    """Push every granted feed until caught up; the entities rendered."""
    catalog = load_feeds()
    total = 0
    for name in consumer.granted():
        while (count := push_feed(consumer, catalog[name])) is not None:
            total += count
    return total
