"""Brokers the relay publishes to, each fed from the durable outbox in `seq` order.

One thread per destination reads its outbox rows after the last one it handed to paho and
publishes them at QoS 1, at most `window` unacknowledged at a time (and no more than the
broker's Receive Maximum). The outbox, not paho, is the record of what is in flight: rows
go out as one write per group (`BufferedClient.publish_many`), and after a reconnect the
destination sends again every row not yet acknowledged, in order. Everything beyond the
window waits in the outbox, so an outage of any length costs disk, not memory. A row is
deleted (by the relay's worker, the database's only writer) once its broker acknowledged it;
after a crash, rows not deleted are sent again — at least once, in order per destination
and so per device — and consumers deduplicate by event id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kernel.relay_settings import Upstream
from relay.store import Pending, RelayStore
from transport.mqtt_socket import BufferedClient

log = logging.getLogger(__name__)


def upstream_client(up: Upstream, community_id: str, session_expiry: int, suffix: str = "") -> BufferedClient:
    """A paho client for one consumer's broker: its own credentials, TLS and persistent session
    (`suffix` names a shard's own session)."""
    client = BufferedClient(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=(up.client_id or f"neuron-relay-{community_id}-{up.name}") + suffix,
        protocol=mqtt.MQTTv5,
        manual_ack=True,  # acknowledgements from the consumer are acked only once recorded
    )
    if up.username:
        client.username_pw_set(up.username, up.password.get_secret_value() if up.password else None)
    if up.tls:
        client.tls_set(ca_certs=str(up.ca_file) if up.ca_file else None)
    client.reconnect_delay_set(1, 4)  # an upstream back from an outage is found within seconds
    return client


def connect(client: mqtt.Client, host: str, port: int, session_expiry: int, keepalive: int = 30) -> None:
    """Connect in the background (retrying), resuming the persistent session."""
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = session_expiry
    client.connect_async(host, port, keepalive, clean_start=False, properties=props)
    client.loop_start()


class Destination:
    """One broker fed from the outbox."""

    def __init__(
        self,
        name: str,
        client: BufferedClient,
        store: RelayStore,
        window: int,
        on_published: Callable[[str, list[int], list[float]], None],
    ) -> None:
        self.name, self.client, self.store, self.window = name, client, store, window
        self.configured_window = window
        self.on_published = on_published
        client.on_raw_puback = self.on_puback
        self._acked: deque[int] = deque()  # mids, appended by paho's network thread
        self._inflight: dict[int, tuple[int, float]] = {}  # mid -> (seq, created as epoch seconds)
        self._last = 0
        # Fast path: rows the committer just wrote are published by it directly, skipping a read
        # and a thread hand-off, but only while this destination is caught up (`_direct`):
        # everything committed before them already handed to paho, and room in the window.
        # Otherwise (start-up backlog, an outage filling the window) this thread reads the outbox.
        self._lock = threading.Lock()
        self._direct = False
        self._refusals = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"relay-{name}", daemon=True)
        self.error: BaseException | None = None

    def on_puback(self, mid: int, reason: int) -> bool:
        """paho's network thread: the broker acknowledged `mid` (no locks here: paho holds its own)."""
        if mid not in self._inflight:
            return False  # not ours (paho's own packets), or from before a reconnect: sent again since
        if reason >= 0x80:
            # Resending cannot help (e.g. not authorised): say so loudly; the upstream's ACL needs fixing.
            log.error("relay: the %s broker refused a relayed message (reason code 0x%02x)", self.name, reason)
        self._acked.append(mid)
        if not self._direct:
            # Only a publisher reading the outbox waits for room; while caught up, the relay's
            # worker settles acknowledgements with each group commit (`settle`), sparing this
            # thread a wake-up per acknowledgement.
            self._wake.set()
        return True

    def connected(self, receive_maximum: int | None) -> None:
        """paho's network thread, on every (re)connection: what was in flight on the lost
        connection is sent again from the outbox, in order, before anything newer."""
        self._settle()
        with self._lock:
            self.window = min(self.configured_window, receive_maximum or self.configured_window)
            if self._inflight:
                self._last = min(seq for seq, _ in self._inflight.values()) - 1
                self._inflight.clear()
            self._direct = False
        self._wake.set()

    def notify(self) -> None:
        """New outbox rows were committed."""
        self._wake.set()

    def offer(self, rows: list[Pending]) -> None:
        """The committer's just-committed rows for this destination: published now if caught up."""
        with self._lock:
            if self._direct and len(self._inflight) + len(rows) <= self.window:
                self._publish(rows)
                return
            self._direct = False
            self._refusals += 1
        self._wake.set()

    def _publish(self, rows: list[Pending]) -> None:
        fresh = [row for row in rows if row.seq > self._last]  # others: handed over by the other path
        if not fresh:
            return
        mids = self.client.packet_ids(len(fresh))
        for mid, row in zip(mids, fresh, strict=True):
            self._inflight[mid] = (row.seq, row.created_at.timestamp())
        self._last = fresh[-1].seq
        self.client.publish_many([(row.topic, row.payload.encode()) for row in fresh], mids)

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(10)

    def settle(self) -> None:
        """Report what the broker acknowledged (from this thread or the relay's worker)."""
        self._settle()

    def _settle(self) -> None:
        seqs, created = [], []
        with self._lock:  # this thread and the relay's worker both settle: pop under the lock
            while self._acked:
                found = self._inflight.pop(self._acked.popleft(), None)
                if found is not None:
                    seqs.append(found[0])
                    created.append(found[1])
        if seqs:
            self.on_published(self.name, seqs, created)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._wake.wait(0.25)
                self._wake.clear()
                self._settle()
                if self._direct:
                    continue
                with self._lock:
                    room, after, refusals = self.window - len(self._inflight), self._last, self._refusals
                if room <= 0:
                    continue
                rows = self.store.pending(self.name, after, room)
                with self._lock:
                    self._publish(rows)
                    # Caught up: the read found less than it could take, and no offer was refused since.
                    self._direct = len(rows) < room and self._refusals == refusals
                if not self._direct:
                    self._wake.set()  # more to read, or an offer came meanwhile
                self._settle()
        except BaseException as exc:  # surfaced by the relay's worker, which stops the relay
            log.exception("relay: publisher for %s failed", self.name)
            self.error = exc


def wait_for(condition: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    """Poll `condition` until it holds (True) or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()
