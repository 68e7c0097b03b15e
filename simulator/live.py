"""`neuron simulate`: Music Square, live, over each system's own protocol, from one command.

- the parking vendor's HTTP API (simulator/server.py) and the intercom/CCTV vendor's open API
  (simulator/vendors_server.py) on loopback, answering for any window asked;
- the WeChat platform's database (SQLite file by default, or any SQLAlchemy URL): the day
  before the start is written at once, then each simulated day when it ends;
- the door-access vendor's daily GBK export, dropped into `<drop>/incoming` the same way
  (yesterday's at start, then each day as it ends: the vendor's tool exports after midnight);
- every MQTT device (systems 2, 3, 6, 7, 8) published at QoS 1 on a broker of our own (a
  private mosquitto when installed, the embedded broker otherwise), each message at its
  simulated time (their alarms at realistic rates, and on demand a kitchen fire: every
  smoke detector of a building at once, simulator/devices_burst.py);

all on one clock that runs `speed` times real time from now. The ground truth of every
identifier kind generated so far (names, ID numbers, phones, rooms, plates, cards, tags,
openids, ballot receipts …) is rewritten to the truth file every `truth_every` seconds,
after each simulated day, and when stopped by SIGINT or SIGTERM, so an outside scanner can
check any output at any moment. The faults are the simulators' own defaults.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from simulator.devices import Message

TZ = ZoneInfo("Asia/Shanghai")


@dataclass
class LiveOptions:
    """What `neuron simulate` serves, and where."""

    state: Path
    seed: int = 7
    speed: float = 1.0
    parking_port: int = 8701
    intercom_port: int = 8702
    parking_token: str = ""
    intercom_token: str = ""
    platform_url: str | None = None  # default: a SQLite file under `state`
    drop: Path | None = None  # default: `state`/doors
    mqtt_port: int = 0  # 0: a free port
    devices: bool = True
    fire_building: int | None = None  # a kitchen fire there a simulated minute after the start
    truth: Path | None = None
    ngsi_ld_port: int | None = None  # also the city brain's NGSI-LD broker (a consumer's peer)
    truth_every: float = 10.0
    start: datetime | None = None  # default: now (Asia/Shanghai)


@dataclass
class SimClock:
    """Simulated time: `start` at `t0` (monotonic), running `speed` times real time."""

    start: datetime
    speed: float
    t0: float = field(default_factory=time.monotonic)

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self.t0) * self.speed)

    def real_delay(self, at: datetime) -> float:
        """Real seconds from now until simulated time `at` (0 if past)."""
        return max(0.0, (at - self.now()).total_seconds() / self.speed)


class Site:
    """One community's systems (several communities share the clock, the broker and the
    platform database, as the platform's one backend serves every community it runs)."""

    def __init__(self, seed: int, community_id: str, first_day: date, drop: Path) -> None:
        from simulator.community import Community
        from simulator.parking import ParkingSimulator
        from simulator.platform import PlatformSimulator
        from simulator.vendors import DoorAccessVendor
        from simulator.vendors_intercom import IntercomVendor

        self.community = Community(seed=seed, community_id=community_id)
        self.parking = ParkingSimulator(seed=seed, community_id=community_id)
        self.intercom = IntercomVendor(self.community)
        self.doors = DoorAccessVendor(self.community)
        self.platform = PlatformSimulator(self.community, first_day=first_day)
        self.drop = drop


def community_ids(count: int) -> list[str]:
    """Music Square first, then its neighbours (each its own seeded community)."""
    return ["music-square", *(f"music-square-{n}" for n in range(2, count + 1))]


class LiveCommunity:
    """Every simulated system of one or more communities on one clock; run() until stop()."""

    def __init__(self, options: LiveOptions, say: Callable[[str], None] = print, communities: int = 1) -> None:
        self.options, self.say = options, say
        options.state.mkdir(parents=True, exist_ok=True)
        start = (options.start or datetime.now(TZ)).astimezone(TZ)
        self.clock = SimClock(start, options.speed)
        self.platform_url = options.platform_url or f"sqlite:///{options.state / 'platform.db'}"
        self.drop = options.drop or options.state / "doors"
        ids = community_ids(communities)
        self.sites = [
            # One community: the drop folder itself; several: a folder each, as each
            # community's office uploads its own export.
            Site(options.seed, cid, start.date() - timedelta(days=1), self.drop if len(ids) == 1 else self.drop / cid)
            for cid in ids
        ]
        self.device_truth: dict[str, set[str]] = {}
        self.published = 0
        self._stop = threading.Event()
        self._truth_lock = threading.Lock()
        self._closers: list[Callable[[], None]] = []
        self._threads: list[threading.Thread] = []
        self.urls: dict[str, str] = {}
        self.ngsi_ld_url: str | None = None  # the city brain's NGSI-LD broker, when served

    # --- the systems -------------------------------------------------------------------------

    def start(self) -> None:
        """Serve the APIs, start the broker and the devices, write what the day before left."""
        from simulator.server import start_parking_api
        from simulator.vendors_server import start_intercom_api

        o = self.options
        for n, site in enumerate(self.sites):
            # Community n's APIs on the given ports + 2n (or free ports when given 0).
            step = 2 * n if o.parking_port else 0
            parking = start_parking_api(site.parking, token=o.parking_token, port=o.parking_port + step)
            self._closers.append(parking.stop)
            step = 2 * n if o.intercom_port else 0
            intercom = start_intercom_api(site.intercom, token=o.intercom_token, port=o.intercom_port + step)
            self._closers.append(intercom.stop)
            suffix = "" if len(self.sites) == 1 else f" ({site.community.community_id})"
            self.urls[f"parking{suffix}"] = parking.url
            self.urls[f"intercom{suffix}"] = intercom.url
            self.urls[f"drop{suffix}"] = str(site.drop)
        self.urls["platform"] = self.platform_url
        if o.ngsi_ld_port is not None:
            from simulator.ngsi_broker import start_broker

            ngsi = start_broker(port=o.ngsi_ld_port)
            self.ngsi_ld_url = ngsi.url
            self._closers.append(ngsi.stop)
            self.urls["ngsi-ld"] = f"{ngsi.url}  (broker_url of a [[push.ngsi_ld]] entry)"
        yesterday = self.clock.start.date() - timedelta(days=1)
        self._day_ended(yesterday)
        if o.devices:
            self._start_devices()
        self._thread(self._days, "days")
        self._thread(self._truth_loop, "truth")

    def _day_ended(self, day: date) -> None:
        """What each system does once a local day is over: the platform has written it, the
        door vendor exports it, the parking vendor has generated it (its plates are truth)."""
        for site in self.sites:
            site.platform.write_days(self.platform_url, 1)
            path = site.doors.export(site.drop, day)
            site.parking.passes_for_day(day)
            site.parking.passes_for_day(day + timedelta(days=1))  # the day now running is served too
        self.say(f"day {day} over: platform DB written, door export {path.name} dropped")
        self.write_truth()

    def _days(self) -> None:
        day = self.clock.start.date()
        while not self._stop.is_set():
            midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), TZ)
            if self._stop.wait(min(self.clock.real_delay(midnight), 5.0)):
                return
            if self.clock.now() >= midnight:
                self._day_ended(day)
                day += timedelta(days=1)

    def _start_devices(self) -> None:
        from simulator.devices import DeviceFleet
        from simulator.devices_broker import Broker

        o = self.options
        broker = Broker(o.state / "broker", port=o.mqtt_port or None).start()
        self._closers.append(broker.stop)
        self.broker = broker
        self.urls["mqtt"] = f"mqtt://{broker.host}:{broker.port} ({broker.kind})"
        self.fleets = [DeviceFleet(site.community) for site in self.sites]
        for fleet in self.fleets:
            for kind, values in fleet.ground_truth().items():
                self.device_truth.setdefault(kind, set()).update(values)
        self._thread(self._devices, "devices")

    def _devices(self) -> None:
        """Publish each device message at its simulated time, an hour of them at a time."""
        from simulator.devices_burst import kitchen_fire
        from simulator.devices_faults import DeviceFaults
        from simulator.devices_publish import _Publisher, messages_between

        faults = DeviceFaults()
        burst: list[Message] = []
        if self.options.fire_building is not None:
            # In the first community (Music Square).
            burst = kitchen_fire(self.fleets[0], self.options.fire_building, self.clock.now() + timedelta(minutes=1))
        pub = _Publisher(self.broker.host, self.broker.port, self.broker.protocol, "simulated-devices-live")
        try:
            pub.wait_connected(30)
            cursor = self.clock.now()
            while not self._stop.is_set():
                until = cursor.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
                due = [m for m in burst if m.publish_at < until]
                burst = [m for m in burst if m.publish_at >= until]
                hour = [*due, *(m for fleet in self.fleets for m in messages_between(fleet, cursor, until, faults))]
                hour.sort(key=lambda m: m.publish_at)
                for m in hour:
                    if self._stop.wait(self.clock.real_delay(m.publish_at)):
                        return
                    pub.client.publish(m.topic, m.body(), qos=1)
                    self.published += 1
                cursor = until
        finally:
            pub.close()

    def add_closer(self, close: Callable[[], None]) -> None:
        """Something more to stop when the simulation stops (after what started before it)."""
        self._closers.append(close)

    def _thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"simulate-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    # --- ground truth -------------------------------------------------------------------------

    def truth_sources(self) -> Iterable[Mapping[str, Iterable[str]]]:
        sources: list[Mapping[str, Iterable[str]]] = [self.device_truth]
        for site in self.sites:
            sources += [
                site.community.ground_truth(),
                site.intercom.ground_truth(),
                site.doors.ground_truth(),
                site.platform.ground_truth(),
                {"plates": site.parking.all_plates()},
            ]
        return sources

    def write_truth(self) -> None:
        """Rewrite the truth file (atomically) with everything generated so far."""
        from simulator.truth import write_truth

        if self.options.truth is None:
            return
        with self._truth_lock:
            # Every community's plates come as a source: they replace the first's own list.
            write_truth(self.sites[0].parking, self.options.truth, self.truth_sources())

    def _truth_loop(self) -> None:
        while not self._stop.wait(self.options.truth_every):
            self.write_truth()

    # --- running ------------------------------------------------------------------------------

    def stop(self, *_: Any) -> None:
        self._stop.set()

    def run(self, on_started: Callable[[LiveCommunity], None] | None = None) -> None:
        """Until SIGINT or SIGTERM (or stop()); the truth is written last, whatever stopped us."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self.stop)
        try:
            self.start()
            if on_started is not None:
                on_started(self)
            while not self._stop.wait(60):
                self.say(f"simulated {self.clock.now():%Y-%m-%d %H:%M}; {self.published} device messages published")
        finally:
            self.close()

    def close(self) -> None:
        """Stop every system (what start() began, in reverse), then write the truth a last time."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        for close in reversed(self._closers):
            close()
        self._closers.clear()
        self.write_truth()
