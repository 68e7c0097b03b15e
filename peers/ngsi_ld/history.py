"""Measurements as temporal instances, written once each (the temporal API).

An observation entity of api/format_ngsi.py is one station-hour (`…:ENV03:2026-11-20T00-00-00Z`),
which suits the current state; history belongs to the station. So each measured attribute
becomes an instance `{"type": "Property", "value": …, "observedAt": …}` of the station's
temporal entity (the observation id without its time part), and a streetlight's state an
instance of the lamp's own entity. Choices where the spec and the models leave it open:
  - NoiseLevelObserved measures over an interval; NGSI-LD's observedAt is one DateTime. The
    interval's start is used (`dateObservedFrom`), as AirQualityObserved's `dateObserved` is
    the start of its hour in our feeds.
  - No datasetId: one sensor per station and attribute, the default instance.

Brokers keep every instance they are given, duplicates included (Orion-LD #1518), so the hub
keeps a ledger of (entity, attribute, datasetId, observedAt): an instance is recorded as
intended before its request leaves and confirmed when the broker answers. One that is still
unconfirmed (the reply was lost: a timeout, a 503 after the write, a crash) is looked up in
the broker's temporal representation before anything is sent again, so a replay never stores
it twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from kernel.errors import RetriableError
from peers.ngsi_ld.batch import DeadLetter, Sleep
from peers.ngsi_ld.client import BrokerClient, BrokerRefused, EntityError
from peers.ngsi_ld.store import InstanceKey, PushStore

Entity = dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True)
class Series:
    """Which attributes of a model are measurements, when they were observed, and whether the
    entity id carries the observation's time (then the series is the id without it)."""

    attributes: tuple[str, ...]
    observed_at: str
    timed_id: bool


SERIES = {
    "AirQualityObserved": Series(("pm25", "pm10", "temperature", "relativeHumidity"), "dateObserved", True),
    "NoiseLevelObserved": Series(("LAeq", "LAmax"), "dateObservedFrom", True),
    "Streetlight": Series(("powerState", "illuminanceLevel", "status"), "observationDateTime", False),
}


@dataclass(frozen=True)
class Observation:
    """One temporal instance to write."""

    series_id: str
    series_type: str
    attribute: str
    observed_at: str
    value: Any
    context: Any

    @property
    def key(self) -> InstanceKey:
        return (self.series_id, self.attribute, "", self.observed_at)


def observations(entity: Entity) -> list[Observation]:
    """The temporal instances an entity's measurements make (none for a model without history)."""
    kind = entity.get("type")
    series = SERIES.get(kind) if isinstance(kind, str) else None
    observed = entity.get(series.observed_at) if series else None
    if series is None or not isinstance(observed, str):
        return []
    assert isinstance(kind, str)
    entity_id = str(entity["id"])
    series_id = entity_id.rsplit(":", 1)[0] if series.timed_id else entity_id
    context = entity.get("@context")
    return [
        Observation(series_id, kind, name, observed, entity[name], context)
        for name in series.attributes
        if entity.get(name) is not None
    ]


def _after(text: str) -> str:
    """One second past an ISO 8601 UTC moment (the end of a half-open `between` that includes it)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")) + timedelta(seconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class HistoryOutcome:
    """One history write's account."""

    sent: int = 0  # instances written
    skipped: int = 0  # already confirmed in the ledger
    recovered: int = 0  # unconfirmed, found at the broker (not sent again)
    requests: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)


class History:
    """Writes one consumer's temporal instances, each at most once."""

    def __init__(self, client: BrokerClient, store: PushStore, sleep: Sleep = time.sleep) -> None:
        self.client, self.store, self.sleep = client, store, sleep
        self.push = client.push
        # Temporal writes are one request per series: a few connections in parallel, each with
        # its own HTTP session (sessions are not shared across threads), the credentials shared.
        extra = [BrokerClient(self.push, client.credentials) for _ in range(self.push.temporal_connections - 1)]
        self.clients = [client, *extra]

    def write(self, entities: list[Entity]) -> HistoryOutcome:
        """Write the instances of `entities` not yet at the broker; RetriableError if it stays
        unavailable (what was not confirmed is looked up next time)."""
        outcome = HistoryOutcome()
        wanted = {o.key: o for e in entities for o in observations(e)}
        if not wanted:
            return outcome
        known = self.store.ledger(wanted)
        outcome.skipped = sum(1 for confirmed in known.values() if confirmed)
        fresh = [key for key in wanted if key not in known]
        doubtful = [key for key, confirmed in known.items() if not confirmed]
        to_send = fresh + self._not_at_broker(doubtful, wanted, outcome)
        stamp = self.store.intend(fresh)
        by_series: dict[str, list[Observation]] = {}
        for key in to_send:
            by_series.setdefault(key[0], []).append(wanted[key])
        series = list(by_series.items())
        shares = [
            (c, series[k :: len(self.clients)]) for k, c in enumerate(self.clients) if series[k :: len(self.clients)]
        ]
        with ThreadPoolExecutor(max(1, len(shares)), thread_name_prefix="ngsi-ld-temporal") as pool:
            results = list(pool.map(lambda share: self._share(*share), shares))
        done: list[InstanceKey] = []
        failure: BaseException | None = None
        for part, part_done, error in results:
            outcome.sent += part.sent
            outcome.recovered += part.recovered
            outcome.requests += part.requests
            outcome.dead += part.dead
            outcome.digests += part.digests
            done += part_done
            failure = failure or error
        # What was written, even when another share stopped early: this round's fresh instances
        # by series attribute (one statement each), the few resent from earlier rounds one by one.
        fresh_set, done_set = set(fresh), set(done)
        whole: dict[tuple[str, str, str], list[InstanceKey]] = {}
        for key in fresh:
            whole.setdefault((key[0], key[1], key[2]), []).append(key)
        ranges: dict[tuple[str, str, str], tuple[str, str]] = {}
        one_by_one = [key for key in done if key not in fresh_set]
        for attribute, keys in whole.items():
            if all(key in done_set for key in keys):  # the whole range was written: one statement
                ranges[attribute] = (min(k[3] for k in keys), max(k[3] for k in keys))
            else:
                one_by_one += [key for key in keys if key in done_set]
        self.store.confirm_round(stamp, ranges)
        self.store.confirm(one_by_one)
        if failure is not None:
            raise failure
        return outcome

    def _share(
        self, client: BrokerClient, series: list[tuple[str, list[Observation]]]
    ) -> tuple[HistoryOutcome, list[InstanceKey], BaseException | None]:
        """One connection's share of the series, in order; what it did, and why it stopped early."""
        outcome, done = HistoryOutcome(), list[InstanceKey]()
        try:
            for series_id, items in series:
                self._series(client, series_id, items, outcome, done)
        except Exception as exc:
            return outcome, done, exc
        return outcome, done, None

    def _not_at_broker(
        self, doubtful: list[InstanceKey], wanted: dict[InstanceKey, Observation], outcome: HistoryOutcome
    ) -> list[InstanceKey]:
        """Of the unconfirmed instances, those the broker does not hold (the others are confirmed)."""
        by_series: dict[str, list[InstanceKey]] = {}
        for key in doubtful:
            by_series.setdefault(key[0], []).append(key)
        missing: list[InstanceKey] = []
        held: list[InstanceKey] = []
        for series_id, keys in by_series.items():
            attrs = sorted({k[1] for k in keys})
            first, last = min(k[3] for k in keys), max(k[3] for k in keys)
            present = self._retrying(self.client.temporal_observed, series_id, attrs, first, _after(last))
            outcome.requests += 1
            for key in keys:
                (held if (key[1], key[3]) in present else missing).append(key)
        self.store.confirm(held)
        outcome.recovered += len(held)
        return missing

    def _series(
        self,
        client: BrokerClient,
        series_id: str,
        items: list[Observation],
        outcome: HistoryOutcome,
        done: list[InstanceKey],
    ) -> None:
        """Write one series' instances. A transient failure may have come after the broker stored
        them (a lost reply): before each resend, the broker is asked which it already holds."""
        pending = items
        for attempt in range(1, self.push.max_attempts + 1):
            try:
                outcome.requests += 1
                digest = client.temporal_write(series_id, items[0].series_type, _attrs(pending), items[0].context)
            except BrokerRefused as refused:
                # Refused for its content: not stored; a dead letter, and out of the ledger.
                error = EntityError(series_id, refused.kind, refused.status, "temporal write refused")
                entity = {"id": series_id, "type": items[0].series_type, **_attrs(pending)}
                if items[0].context:  # what a re-send needs to write it the same way (peers/ngsi_ld/resend.py)
                    entity["@context"] = items[0].context
                outcome.dead.append(DeadLetter(entity, error, attempt))
                self.store.forget([i.key for i in pending])
                return
            except RetriableError:
                if attempt == self.push.max_attempts:
                    raise  # still unconfirmed in the ledger: looked up on the next round
                self.sleep(min(self.push.backoff_max_seconds, self.push.backoff_seconds * 2 ** (attempt - 1)))
                held = self._held(client, series_id, pending, outcome)
                done.extend(i.key for i in held)
                outcome.recovered += len(held)
                pending = [i for i in pending if i not in held]
                if not pending:
                    return
                continue
            outcome.digests.append(digest)
            outcome.sent += len(pending)
            done.extend(i.key for i in pending)
            return

    def _held(
        self, client: BrokerClient, series_id: str, items: list[Observation], outcome: HistoryOutcome
    ) -> list[Observation]:
        """Those of `items` the broker holds."""
        attrs = sorted({i.attribute for i in items})
        first, last = min(i.observed_at for i in items), max(i.observed_at for i in items)
        outcome.requests += 1
        present = self._retrying(client.temporal_observed, series_id, attrs, first, _after(last))
        return [i for i in items if (i.attribute, i.observed_at) in present]

    def _retrying(self, call: Callable[..., T], *args: Any) -> T:
        for attempt in range(1, self.push.max_attempts + 1):
            try:
                return call(*args)
            except RetriableError:
                if attempt == self.push.max_attempts:
                    raise
                self.sleep(min(self.push.backoff_max_seconds, self.push.backoff_seconds * 2 ** (attempt - 1)))
        raise AssertionError("unreachable")


def _attrs(items: list[Observation]) -> dict[str, list[Entity]]:
    """The temporal body's attributes: each a list of instances, in time order."""
    attrs: dict[str, list[Entity]] = {}
    for item in sorted(items, key=lambda o: (o.attribute, o.observed_at)):
        attrs.setdefault(item.attribute, []).append(
            {"type": "Property", "value": item.value, "observedAt": item.observed_at}
        )
    return attrs
