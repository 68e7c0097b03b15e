"""`neuron push`: every `[[push.ngsi_ld]]` consumer's feeds and alerts, until stopped.

Two threads per consumer, so a long feed backlog never delays an alarm: one reads the relay's
alert outbox every `alert_poll_seconds`, one follows the feeds' publications every
`poll_seconds`. A broker that is down is retried at the next poll (its rows wait: the feed
cursor and the outbox move only after the broker took them); a configuration error (credentials
refused, a content type refused) is logged as one line and retried a minute later.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from kernel.errors import FatalError, NeuronError
from kernel.settings import Settings
from peers.ngsi_ld.alerts import kept_fields, push_alerts
from peers.ngsi_ld.consumer import ConsumerPush
from peers.ngsi_ld.feeds import push_feeds
from peers.ngsi_ld.resend import resend_dead_letters

log = logging.getLogger(__name__)
FATAL_PAUSE_SECONDS = 60.0


@dataclass
class PushStats:
    """Counts of one run (no entity content)."""

    feed_entities: int = 0
    alert_rows: int = 0
    failures: int = 0


def push_once(settings: Settings) -> PushStats:
    """Push what is waiting for every consumer (alerts, then feeds), then return."""
    stats = PushStats()
    for push in settings.push.ngsi_ld:
        consumer = ConsumerPush(settings, push)
        kept = kept_fields(consumer)
        if push.alerts:
            while (settled := push_alerts(consumer, kept)) > 0:
                stats.alert_rows += settled
        stats.feed_entities += push_feeds(consumer)
        resend_dead_letters(consumer, "console", requested_only=True)
    return stats


def _loop(name: str, every: float, work: Callable[[], int], stop: threading.Event, stats: PushStats) -> None:
    while not stop.is_set():
        pause = every
        try:
            if work() > 0:
                pause = 0  # more may be waiting
        except FatalError as exc:
            stats.failures += 1
            log.error("push %s: %s (retrying in %.0f s)", name, exc, FATAL_PAUSE_SECONDS)
            pause = FATAL_PAUSE_SECONDS
        except NeuronError as exc:
            stats.failures += 1
            log.warning("push %s: %s (retrying in %.1f s)", name, exc, every)
        stop.wait(pause)


def run_push(settings: Settings, stop_event: threading.Event | None = None) -> PushStats:
    """Push continuously until `stop_event` is set (or, without one, until SIGTERM/SIGINT)."""
    stop = stop_event or threading.Event()
    if stop_event is None and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    stats = PushStats()
    threads: list[threading.Thread] = []
    for push in settings.push.ngsi_ld:
        works: list[tuple[str, float, Callable[[], int]]] = [
            (f"{push.name} feeds", push.poll_seconds, partial(_feeds_round, stats, ConsumerPush(settings, push)))
        ]
        if push.alerts:
            alerts = ConsumerPush(settings, push)  # its own HTTP session: alarms never queue behind feeds
            round_ = partial(_alerts_round, stats, alerts, kept_fields(alerts))
            works.append((f"{push.name} alerts", push.alert_poll_seconds, round_))
        for name, every, work in works:
            thread = threading.Thread(target=_loop, args=(name, every, work, stop, stats), name=f"push {name}")
            thread.daemon = True
            thread.start()
            threads.append(thread)
    log.info("push: %d consumer broker(s)", len(settings.push.ngsi_ld))
    stop.wait()
    for thread in threads:
        thread.join(30)
    return stats


def _feeds_round(stats: PushStats, consumer: ConsumerPush) -> int:
    n = push_feeds(consumer)
    stats.feed_entities += n
    # Dead letters an admin asked the console to re-send (the console does not reach the brokers).
    resend_dead_letters(consumer, "console", requested_only=True)
    return n


def _alerts_round(stats: PushStats, consumer: ConsumerPush, kept: set[str]) -> int:
    n = push_alerts(consumer, kept)
    stats.alert_rows += n
    return n
