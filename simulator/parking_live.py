"""A parking vendor whose passes happen now: for channels that poll it continuously (the VIID cascade).

The day simulator (simulator/parking.py) serves a reproducible day of passes spread over 24 hours;
this one records passes as they are made (`add` or a steady `rate` per second), each updated at
the moment it is made, with the same record shape, plates and gates. Serve it with
`simulator.server.start_parking_api` like the day simulator.
"""

from __future__ import annotations

import bisect
import threading
import time
from datetime import UTC, datetime
from random import Random
from typing import Any

from simulator.parking import CST, GATES, Faults, ParkingSimulator


class LiveParking:
    """Passes made on demand or at a steady rate; `records_updated_between` as the vendor API serves them."""

    def __init__(self, seed: int = 7, community_id: str = "music-square", park_code: str = "MSQ") -> None:
        self.seed = seed
        self.community_id = community_id
        self.park_code = park_code
        self.faults = Faults.none()
        fleet = ParkingSimulator(seed=seed, community_id=community_id, passes_per_day=100)
        self._vehicles = fleet.residents + fleet.visitor_pool
        self._rng = Random(f"{seed}:{community_id}:live")
        self._lock = threading.Lock()
        self._served: list[tuple[datetime, str, dict[str, Any]]] = []
        self._count = 0
        self.made: dict[str, float] = {}  # record_id → time.monotonic() when made
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, n: int = 1) -> list[str]:
        """Make `n` passes now; their record ids."""
        made = []
        with self._lock:
            for _ in range(n):
                self._count += 1
                vehicle = self._rng.choice(self._vehicles)
                gate = self._rng.choice(sorted(GATES))
                now = datetime.now(CST)
                record_id = f"{self.park_code}-LIVE-{self._count:08d}"
                record: dict[str, Any] = {
                    "record_id": record_id,
                    "park_code": self.park_code,
                    "community_id": self.community_id,
                    "gate_code": gate,
                    "gate_name": GATES[gate],
                    "direction": self._rng.choice(("in", "out")),
                    "plate_no": vehicle.plate,
                    "plate_color": vehicle.color,
                    "vehicle_type": vehicle.kind,
                    "pass_time": now.isoformat(),
                    "updated_at": now.isoformat(),
                    "fee_fen": None,
                }
                self._served.append((now, record_id, record))
                self.made[record_id] = time.monotonic()
                made.append(record_id)
        return made

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for _, _, r in self._served]

    def records_updated_between(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        with self._lock:
            # Made in time order: a bisection finds the window.
            start = bisect.bisect_left(self._served, since.astimezone(UTC), key=lambda s: s[0])
            end = bisect.bisect_left(self._served, until.astimezone(UTC), key=lambda s: s[0])
            return [dict(s[2]) for s in self._served[start:end]]

    def run_at(self, rate: float, total: int) -> None:
        """Make `total` passes at `rate` per second in a background thread (evenly spaced)."""

        def loop() -> None:
            start = time.monotonic()
            for k in range(total):
                delay = start + k / rate - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
                self.add(1)

        self._thread = threading.Thread(target=loop, name="live-parking", daemon=True)
        self._thread.start()

    def wait_done(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def stop(self) -> None:
        self._stop.set()
        self.wait_done(5)
