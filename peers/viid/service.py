"""`neuron viid`: the hub as a lower VIID platform, three loops and a small HTTP server.

- registrar: Register (Digest), then Keepalive every `keepalive_seconds`; any keepalive failure
  or a 401 anywhere means "register again" (an upper that restarted has forgotten us).
- poller: every `poll_seconds`, the parking vendor's passes updated since the channel's cursor
  (minus an overlap), through the consumer's policy, into the outbox of each subscription
  they match, in one transaction with the cursor.
- pusher: per subscription, the oldest unacknowledged notifications (`window` per request;
  1 = stop-and-wait), sent until acknowledged; an acknowledgement deletes the row and audits
  the export. After any outage it resumes from the oldest unacknowledged row, with the same
  NotificationID, so the upper can tell a redelivery from a new notification.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyarrow as pa
from sqlalchemy.exc import SQLAlchemyError

from connectors.families import open_stream
from kernel.errors import ConfigError, NeuronError
from kernel.settings import Settings
from kernel.viid_settings import ViidSettings
from peers.viid.client import CredentialsRefused, NotRegistered, UpperClient, UpperUnavailable
from peers.viid.protocol import BAD_CONTENT, BAD_JSON, INVALID_OPERATION, OK
from peers.viid.records import FEED, ChannelPass, PassView
from peers.viid.server import ViidServer
from peers.viid.store import Pending, Subscription, ViidStore
from privacy.keys import HubKeys
from privacy.policy import load_policies
from schemas.feeds import load_feeds
from schemas.viid import CENTRE
from warehouse.recipients import recipients_by_policy

log = logging.getLogger(__name__)
PURGE_EVERY = 3600.0


@dataclass
class ViidStats:
    registrations: int = 0
    register_failures: int = 0
    keepalives: int = 0
    keepalive_failures: int = 0
    polls: int = 0
    poll_failures: int = 0
    passes_read: int = 0
    passes_queued: int = 0
    notifications_queued: int = 0
    requests: int = 0  # notification requests sent
    acknowledged: int = 0  # notifications
    objects_acknowledged: int = 0
    refused: int = 0
    retries: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # reason (a field name) → rows
    # Seconds from a pass's extraction to the upper's acknowledgement, one entry per pass (bounded).
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=200_000))
    registered: bool = False


def matches(sub: Subscription, p: ChannelPass, platform_id: str, place_code: str) -> bool:
    """Whether a pass falls under a subscription: its time window and its resources."""
    if not sub.begin_time <= p.pass_time < sub.end_time:
        return False
    uris = sub.resource_uris
    if sub.resource_class == 0:  # tollgates
        return str(p.vehicle.get("TollgateID")) in uris
    if sub.resource_class == 1:  # capture devices
        return str(p.vehicle.get("DeviceID")) in uris
    if sub.resource_class == 4:  # VIID platforms: ours
        return platform_id in uris
    if sub.resource_class == 5:  # administrative divisions (2, 4 or 6 digits): ours, or one containing it
        return any(len(u) in (2, 4, 6) and (place_code.startswith(u) or CENTRE.startswith(u)) for u in uris)
    return False


class ViidService:
    """The lower platform: run(stop) until `stop` is set."""

    def __init__(self, settings: Settings, config: ViidSettings | None = None, keys: HubKeys | None = None) -> None:
        self.settings = settings
        self.config = config or settings.viid
        if not self.config.configured:
            raise ConfigError("[viid] has no upper_url: the cascade is not configured")
        if not self.config.password.get_secret_value():
            raise ConfigError("[viid] has no password: set NEURON_VIID__PASSWORD")
        self.keys = keys or HubKeys.load(settings)
        policies = {p.consumer: p for p in load_policies(settings.policies_dir).values()}
        policy = policies.get(self.config.consumer)
        if policy is None:
            raise ConfigError(
                f"[viid] consumer {self.config.consumer!r} has no sharing policy in {settings.policies_dir}"
            )
        self.policy = policy
        feed = load_feeds()[FEED]
        recipient = recipients_by_policy(settings).get(policy.consumer)
        self.view = PassView(settings, self.keys, policy, feed, recipient)
        self.store = ViidStore(settings.control_url)
        self.client = UpperClient(self.config)
        self.server = ViidServer(self.config, self.store, settings.community_id, self._wake_all)
        self.source = open_stream(settings, self.view.contract)  # the vehicle_passes connector
        self.stats = ViidStats()
        self._registered = threading.Event()
        self._reregister = threading.Event()
        self._work = threading.Event()
        self._stop = threading.Event()
        self._recent: dict[str, float] = {}  # record key → when a poll of this process last handled it
        self._extracted: dict[str, float] = {}  # NotificationID → when its passes were extracted (monotonic)
        self._lock = threading.Lock()

    # --- life cycle --------------------------------------------------------------------------

    def wait_connected(self, timeout: float) -> bool:
        return self._registered.wait(timeout)

    def run(self, stop: threading.Event) -> ViidStats:
        self._stop = stop
        self.server.start()
        log.info("viid: lower platform serving /VIID/Subscribes on %s", self.server.url)
        threads = [
            threading.Thread(target=self._guard, args=(self._registrar,), name="viid-registrar", daemon=True),
            threading.Thread(target=self._guard, args=(self._poller,), name="viid-poller", daemon=True),
            threading.Thread(target=self._guard, args=(self._pusher,), name="viid-pusher", daemon=True),
        ]
        for thread in threads:
            thread.start()
        stop.wait()
        self._wake_all()
        for thread in threads:
            thread.join(self.config.timeout_seconds + 5)
        self.server.stop()
        if self._registered.is_set():
            try:
                self.client.unregister()
            except NeuronError as exc:
                log.info("viid: unregister on stop failed (%s)", exc)
        self.client.close()
        return self.stats

    def _guard(self, loop: object) -> None:
        # A loop that dies of an unexpected error stops the whole service (the supervisor restarts
        # it) rather than leaving a half-working channel.
        try:
            loop()  # type: ignore[operator]
        except BaseException:
            log.exception("viid: a loop stopped unexpectedly; stopping the service")
            self._stop.set()
            raise

    def _wake_all(self) -> None:
        self._work.set()
        self._reregister.set()

    # --- registrar ---------------------------------------------------------------------------

    def _registrar(self) -> None:
        delay = self.config.retry_min_seconds
        while not self._stop.is_set():
            if not self._registered.is_set():
                try:
                    self.client.register()
                except CredentialsRefused as exc:
                    self.stats.register_failures += 1
                    log.error("viid: %s", exc)
                    self._stop.wait(self.config.retry_max_seconds)
                    continue
                except UpperUnavailable as exc:
                    self.stats.register_failures += 1
                    log.warning("viid: %s; registering again in %.1f s", exc, delay)
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.config.retry_max_seconds)
                    continue
                delay = self.config.retry_min_seconds
                self.stats.registrations += 1
                self.stats.registered = True
                self._reregister.clear()
                self._registered.set()
                self._work.set()
                log.info("viid: registered with the upper platform")
                self._check_clock()
                continue
            self._reregister.wait(self.config.keepalive_seconds)
            if self._stop.is_set():
                return
            if self._reregister.is_set() and not self._registered.is_set():
                continue  # the pusher saw a 401: register at once
            self._reregister.clear()
            try:
                self.client.keepalive()
                self.stats.keepalives += 1
            except (NotRegistered, UpperUnavailable) as exc:
                self.stats.keepalive_failures += 1
                log.warning("viid: %s; registering again", exc)
                self._lost_registration()

    def _lost_registration(self) -> None:
        self._registered.clear()
        self.stats.registered = False
        self._reregister.set()

    def _check_clock(self) -> None:
        skew = self.client.clock_skew()
        if skew is not None and abs(skew) > self.config.max_clock_skew_seconds:
            log.warning("viid: the upper platform's clock differs from ours by %.0f s (check NTP)", skew)

    # --- poller ------------------------------------------------------------------------------

    def _poller(self) -> None:
        last_purge = 0.0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.poll_once()
            except (NeuronError, SQLAlchemyError) as exc:  # the next poll reads the same window again
                self.stats.poll_failures += 1
                log.warning("viid: reading the parking vendor failed (%s); next poll as usual", exc)
            if started - last_purge > PURGE_EVERY:
                last_purge = started
                self.store.purge_seen(self.config.seen_retention_days)
            self._stop.wait(max(0.0, self.config.poll_seconds - (time.monotonic() - started)))

    def poll_once(self) -> int:
        """One read of the vendor into the outbox; the number of passes queued."""
        until = datetime.now(UTC)
        cursor = self.store.cursor(self.settings.community_id)
        overlap = timedelta(seconds=self.config.poll_overlap_seconds)
        # First run: from now (minus the overlap). History travels by the batch pipeline and the pull
        # API; the cascade carries what happens from the moment it is configured. Likewise a new
        # subscription whose BeginTime lies in the past gets the passes read after it was accepted
        # (the standard does not say whether a subscription reaches back; backfilling history to
        # police was not asked for by the policy's owner).
        since = (cursor or until) - overlap
        batches = list(self.source.extract(since, until))
        extracted = time.monotonic()
        self.stats.polls += 1
        passes: list[ChannelPass] = []
        handled: list[str] = []
        for batch in batches:
            unseen, keys = self._unseen(pa.Table.from_batches([batch]))
            found, skipped = self.view.passes(unseen)
            passes += found
            handled += keys
            self.stats.skipped.update(skipped)
        self.stats.passes_read += len(passes)
        subs = self.store.active(until)
        if not subs and not passes:
            return 0

        def routes(p: ChannelPass) -> Iterable[Subscription]:
            return [s for s in subs if matches(s, p, self.config.device_id, self.config.place_code)]

        queued = self.store.queue(
            self.settings.community_id, passes, until, routes, self.config.device_id, self.config.max_objects
        )
        # Remembered only once queued (committed): a failed poll leaves them to the next one.
        self._recent.update(dict.fromkeys(handled, extracted))
        with self._lock:
            for nid, _ in queued:
                self._extracted[nid] = extracted
        count = sum(len(group) for _, group in queued)
        self.stats.notifications_queued += len(queued)
        self.stats.passes_queued += count
        if queued:
            self._work.set()
        return count

    def _unseen(self, raw: pa.Table) -> tuple[pa.Table, list[str]]:
        """The rows not queued by a recent poll of this process (the overlap re-reads them each
        time), and their keys: the policy, sealing included, runs once per pass. The control DB's
        record of queued passes stays the truth (store.queue); this only saves work."""
        now = time.monotonic()
        horizon = self.config.poll_overlap_seconds + 60
        self._recent = {k: t for k, t in self._recent.items() if now - t < horizon}
        communities = raw.column("community_id").to_pylist()
        ids = raw.column("record_id").to_pylist()
        keep, keys = [], []
        for community, record_id in zip(communities, ids, strict=True):
            key = self.view.record_key(f"{community}\x1f{record_id}")
            keep.append(key not in self._recent)
            if keep[-1]:
                keys.append(key)
        return raw.filter(pa.array(keep, pa.bool_())), keys

    # --- pusher ------------------------------------------------------------------------------

    # ReportInterval (A.19) is not used to pace pushes: the sources disagree on whether it is a
    # minimum spacing or a batching period (dossier-aggr defaults it to 30 s), and spacing
    # notifications of at most 20 vehicles 30 s apart could not carry a gate's traffic. Passes are
    # pushed as they arrive; stop-and-wait on the upper's acknowledgements is the back-pressure.
    def _pusher(self) -> None:
        delay = self.config.retry_min_seconds
        while not self._stop.is_set():
            if not self._registered.wait(0.5):
                continue
            self._work.clear()
            progressed, failed = False, False
            for sub in self.store.active(datetime.now(UTC)):
                pending = self.store.pending(sub.subscribe_id, self.config.window)
                if not pending or self._stop.is_set():
                    continue
                try:
                    outcome = self._send(sub, pending)
                except SQLAlchemyError as exc:  # the control DB is busy or away: the rows stay queued
                    log.warning("viid: the control database failed (%s); retrying", type(exc).__name__)
                    outcome = "failed"
                progressed |= outcome == "progress"
                failed |= outcome == "failed"
                if outcome == "unregistered":
                    failed = True
                    break
            if failed:
                self.stats.retries += 1
                self._stop.wait(delay)
                delay = min(delay * 2, self.config.retry_max_seconds)
            elif progressed:
                delay = self.config.retry_min_seconds
            else:
                delay = self.config.retry_min_seconds
                self._work.wait(0.5)

    def _send(self, sub: Subscription, pending: list[Pending]) -> str:
        """One request; "progress", "failed" (retry after a backoff) or "unregistered"."""
        self.stats.requests += 1
        try:
            codes = self.client.notify(sub.receive_addr, [p.body for p in pending])
        except NotRegistered:
            log.info("viid: the upper platform no longer knows us (401); registering again")
            self._lost_registration()
            self.store.attempted([p.seq for p in pending])
            return "unregistered"
        except UpperUnavailable as exc:
            log.warning("viid: %s; the notification stays queued", exc)
            self.store.attempted([p.seq for p in pending])  # failed attempts only: no commit on the happy path
            return "failed"
        acked = [p for p in pending if codes.get(p.notification_id) == OK]
        if len(acked) < len(pending):
            self.store.attempted([p.seq for p in pending if p not in acked])
        if acked:
            fields = self.view.fields
            self.store.acknowledge(acked, sub, self.policy.consumer, self.policy.fingerprint, fields)
            now = time.monotonic()
            with self._lock:
                for p in acked:
                    started = self._extracted.pop(p.notification_id, None)
                    if started is not None:
                        self.stats.latencies.extend([now - started] * p.objects)
            self.stats.acknowledged += len(acked)
            self.stats.objects_acknowledged += sum(p.objects for p in acked)
        for p in pending:
            code = codes.get(p.notification_id)
            if code in (BAD_CONTENT, BAD_JSON):
                # Resending the same content gets the same answer: kept for the operator, not retried.
                self.store.refuse(p, f"StatusCode {code}")
                self.stats.refused += 1
                log.error("viid: the upper refused a notification's content (StatusCode %s); not resent", code)
            elif code == INVALID_OPERATION:
                # Unknown or cancelled subscription at the upper. The standard gives no rule; a cancel
                # reaches us by PUT, so this is taken as the upper's state being behind (a restore):
                # kept and retried with backoff rather than dropped.
                log.warning("viid: the upper does not know the subscription (StatusCode 4); retrying later")
        if len(acked) < len(pending) and any(
            codes.get(p.notification_id) not in (OK, BAD_CONTENT, BAD_JSON) for p in pending
        ):
            return "failed"
        return "progress"
