"""The Music Square parking vendor's data: vehicle passes at two gates, deterministic from a seed."""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from itertools import accumulate, pairwise
from random import Random
from typing import Any

from simulator import plates

CST = timezone(timedelta(hours=8), "Asia/Shanghai")
GATES: dict[str, str] = {"G1": "北门", "G2": "南门"}  # G1 opens onto Changshou Road.
VISITOR_SHARE = 0.35
OVERNIGHT_SHARE = 0.008  # of daily passes: visitors entering in the evening, leaving next morning
# Relative pass volume per local hour. Residents leave 7-9 and return 17-20; visitors spread over the day.
RESIDENT_CURVE = (2, 1, 1, 1, 1, 3, 10, 40, 45, 18, 10, 10, 12, 10, 10, 12, 18, 40, 45, 35, 18, 10, 6, 3)
VISITOR_CURVE = (0.5, 0.3, 0.2, 0.2, 0.3, 0.5, 2, 6, 10, 14, 16, 14, 12, 13, 15, 15, 14, 14, 15, 14, 10, 6, 3, 1.5)
FAULT_KINDS = ("malformed_plate", "duplicate", "late", "bad_pass_time", "bad_direction")

Record = dict[str, Any]


@dataclass(frozen=True)
class Faults:
    """Rates of the vendor's known defects; all deterministic from the simulator's seed."""

    malformed_rate: float = 0.01
    duplicate_rate: float = 0.005
    late_rate: float = 0.02
    error_every: int = 0
    slow_every: int = 0
    slow_seconds: float = 0.0
    bad_time_rate: float = 0.002
    bad_direction_rate: float = 0.002

    @classmethod
    def none(cls) -> Faults:
        """A perfectly behaved vendor."""
        return cls(malformed_rate=0.0, duplicate_rate=0.0, late_rate=0.0, bad_time_rate=0.0, bad_direction_rate=0.0)


@dataclass(frozen=True)
class Vehicle:
    """A vehicle known to the simulator: its true plate, plate colour and kind."""

    plate: str
    color: str  # blue | green | yellow
    kind: str  # resident | visitor


@dataclass(frozen=True)
class _Pass:
    when: datetime
    vehicle: Vehicle
    direction: str
    gate: str
    fee_fen: int | None


@dataclass
class _Day:
    records: list[Record]
    served: list[tuple[datetime, str, Record]]
    faults: dict[str, str]
    malformed: set[str]


def parking_fee_fen(entered: datetime, exited: datetime) -> int:
    """Visitor charge: first 30 min free, then 1000 fen per started hour, at most 6000 per 24 h."""
    minutes = (exited - entered).total_seconds() / 60 - 30
    if minutes <= 0:
        return 0
    days, rest = divmod(minutes, 24 * 60)
    return int(days) * 6000 + min(math.ceil(rest / 60) * 1000, 6000)


class ParkingSimulator:
    """Residents' and visitors' cars passing Music Square's gates, one reproducible day at a time."""

    def __init__(
        self,
        seed: int = 7,
        community_id: str = "music-square",
        households: int = 706,
        passes_per_day: int = 1500,
        faults: Faults | None = None,
        park_code: str = "MSQ",
    ) -> None:
        self.seed = seed
        self.community_id = community_id
        self.households = households
        self.passes_per_day = passes_per_day
        self.faults = faults if faults is not None else Faults()
        self.park_code = park_code
        self._lock = threading.Lock()
        self._days: dict[date, _Day] = {}
        rng = Random(f"{seed}:{community_id}:fleet")
        taken: set[str] = set()
        self.residents: list[Vehicle] = []
        for _ in range(households):
            # 0, 1 or 2 cars per household: 0.65 on average.
            u = rng.random()
            for _ in range(0 if u < 0.42 else 1 if u < 0.93 else 2):
                green = rng.random() < 0.2
                self.residents.append(self._new_vehicle(rng, taken, "resident", 0.78, green, False))
        self.visitor_pool: list[Vehicle] = []
        for _ in range(max(3000, passes_per_day * 2)):
            u = rng.random()
            self.visitor_pool.append(self._new_vehicle(rng, taken, "visitor", 0.55, u < 0.18, u > 0.97))

    @staticmethod
    def _new_vehicle(rng: Random, taken: set[str], kind: str, local: float, green: bool, yellow: bool) -> Vehicle:
        while True:
            province = plates.random_province(rng, local)
            plate = plates.new_energy_plate(rng, province) if green else plates.ordinary_plate(rng, province)
            if plate not in taken:
                taken.add(plate)
                return Vehicle(plate, "green" if green else "yellow" if yellow else "blue", kind)

    # --- public API -------------------------------------------------------------------------

    def passes_for_day(self, day: date) -> list[Record]:
        """Every distinct record whose pass happened on `day` (Shanghai time), in record_id order."""
        return [dict(r) for r in self._day(day).records]

    def records_updated_between(self, since: datetime, until: datetime) -> list[Record]:
        """Records as served, duplicates included, with since <= updated_at < until, by (updated_at, id)."""
        if since.tzinfo is None or until.tzinfo is None:
            raise ValueError("since and until must be timezone-aware")
        if since >= until:
            return []
        # Late records reach the feed up to 6 h after the pass, so the day before can still contribute.
        first = since.astimezone(CST).date() - timedelta(days=1)
        last = until.astimezone(CST).date()
        hits: list[tuple[datetime, str, Record]] = []
        for n in range((last - first).days + 1):
            hits.extend(s for s in self._day(first + timedelta(days=n)).served if since <= s[0] < until)
        hits.sort(key=lambda s: (s[0], s[1]))
        return [dict(s[2]) for s in hits]

    @property
    def fault_log(self) -> dict[str, str]:
        """record_id -> fault kind, for every day generated so far."""
        with self._lock:
            days = list(self._days.values())
        return {rid: kind for d in days for rid, kind in d.faults.items()}

    def all_plates(self) -> set[str]:
        """Every plate string the simulator can emit so far; the empty malformed plate is left out."""
        with self._lock:
            days = list(self._days.values())
        found = {v.plate for v in self.residents} | {v.plate for v in self.visitor_pool}
        for d in days:
            found |= d.malformed
        found.discard("")
        return found

    # --- generation -------------------------------------------------------------------------

    def _day(self, day: date) -> _Day:
        with self._lock:
            cached = self._days.get(day)
        if cached is not None:
            return cached
        built = self._build_day(day)
        with self._lock:
            return self._days.setdefault(day, built)

    def _rng(self, day: date, stream: str) -> Random:
        return Random(f"{self.seed}:{self.community_id}:{day.isoformat()}:{stream}")

    def _overnight(self, day: date) -> list[tuple[Vehicle, datetime, datetime]]:
        """Visitors entering on the evening of `day` and leaving the next morning."""
        rng = self._rng(day, "overnight")
        n = round(self.passes_per_day * OVERNIGHT_SHARE * rng.uniform(0.6, 1.4))
        evening = datetime.combine(day, time(19), CST)
        morning = evening + timedelta(hours=11)
        return [
            (
                v,
                evening + timedelta(seconds=rng.randrange(5 * 3600)),
                morning + timedelta(seconds=rng.randrange(4 * 3600)),
            )
            for v in rng.sample(self.visitor_pool, n)
        ]

    @staticmethod
    def _at(rng: Random, day: date, curve: tuple[float, ...]) -> datetime:
        hour = rng.choices(range(24), weights=curve)[0]
        return datetime.combine(day, time(hour), CST) + timedelta(seconds=rng.randrange(3600))

    def _gate(self, rng: Random) -> str:
        return "G1" if rng.random() < 0.6 else "G2"

    def _resident_passes(self, rng: Random, day: date, target: int) -> list[_Pass]:
        trips = Counter(rng.randrange(len(self.residents)) for _ in range(target // 2))
        out: list[_Pass] = []
        for idx, k in sorted(trips.items()):
            vehicle = self.residents[idx]
            times: list[datetime] = []
            for _ in range(10):  # redraw until errands are at least 2 minutes apart
                times = sorted(self._at(rng, day, RESIDENT_CURVE) for _ in range(2 * k))
                if all(b - a >= timedelta(minutes=2) for a, b in pairwise(times)):
                    break
            for i, when in enumerate(times):
                out.append(_Pass(when, vehicle, "out" if i % 2 == 0 else "in", self._gate(rng), None))
        return out

    def _visitor_passes(self, rng: Random, day: date, target: int) -> list[_Pass]:
        leaving = self._overnight(day - timedelta(days=1))
        staying = self._overnight(day)
        out = [_Pass(o, v, "out", self._gate(rng), parking_fee_fen(i, o)) for v, i, o in leaving]
        out += [_Pass(i, v, "in", self._gate(rng), None) for v, i, _ in staying]
        busy = {v.plate for v, _, _ in leaving} | {v.plate for v, _, _ in staying}
        free = [v for v in self.visitor_pool if v.plate not in busy]
        end = datetime.combine(day, time(23, 59, 59), CST)
        for vehicle in rng.sample(free, max(0, (target - len(out)) // 2)):
            entered = min(self._at(rng, day, VISITOR_CURVE), end - timedelta(minutes=15))
            stay = timedelta(minutes=rng.lognormvariate(math.log(80), 0.8))
            if entered + stay >= end:
                stay = (end - entered) * rng.uniform(0.3, 0.95)
            left = entered + max(stay, timedelta(minutes=3))
            left = left.replace(microsecond=0)
            out.append(_Pass(entered, vehicle, "in", self._gate(rng), None))
            out.append(_Pass(left, vehicle, "out", self._gate(rng), parking_fee_fen(entered, left)))
        return out

    def _build_day(self, day: date) -> _Day:
        rng = self._rng(day, "passes")
        scale = rng.uniform(0.95, 1.05) * (0.94 if day.weekday() >= 5 else 1.0)
        total = round(self.passes_per_day * scale)
        visitors = round(total * VISITOR_SHARE)
        passes = self._resident_passes(rng, day, total - visitors) + self._visitor_passes(rng, day, visitors)
        passes.sort(key=lambda p: (p.when, p.vehicle.plate, p.direction))
        records = [self._record(day, n, p, rng) for n, p in enumerate(passes, start=1)]
        return self._apply_faults(day, records)

    def _record(self, day: date, n: int, p: _Pass, rng: Random) -> Record:
        return {
            "record_id": f"{self.park_code}-{day:%Y%m%d}-{n:06d}",
            "park_code": self.park_code,
            "community_id": self.community_id,
            "gate_code": p.gate,
            "gate_name": GATES[p.gate],
            "direction": p.direction,
            "plate_no": p.vehicle.plate,
            "plate_color": p.vehicle.color,
            "vehicle_type": p.vehicle.kind,
            "pass_time": p.when.isoformat(),
            "updated_at": (p.when + timedelta(seconds=rng.randint(1, 5))).isoformat(),
            "fee_fen": p.fee_fen,
        }

    def _apply_faults(self, day: date, records: list[Record]) -> _Day:
        # A separate stream, so that the same seed gives the same underlying passes whatever the fault rates.
        rng = self._rng(day, "faults")
        f = self.faults
        rates = (f.malformed_rate, f.duplicate_rate, f.late_rate, f.bad_time_rate, f.bad_direction_rate)
        bounds = list(zip(FAULT_KINDS, accumulate(rates), strict=True))
        faults: dict[str, str] = {}
        malformed: set[str] = set()
        served: list[tuple[datetime, str, Record]] = []
        for rec in records:
            u = rng.random()
            kind = next((k for k, b in bounds if u < b), None)
            if kind == "malformed_plate":
                rec["plate_no"] = plates.malformed_plate(rng, rec["plate_no"])
                malformed.add(rec["plate_no"])
            elif kind == "late":
                late = datetime.fromisoformat(rec["pass_time"]) + timedelta(seconds=rng.randint(3600, 6 * 3600))
                rec["updated_at"] = late.isoformat()
            elif kind == "bad_pass_time":
                rec["pass_time"] = _bad_timestamp(rng, day)
            elif kind == "bad_direction":
                rec["direction"] = "x"
            if kind is not None:
                faults[rec["record_id"]] = kind
            entry = (datetime.fromisoformat(rec["updated_at"]), rec["record_id"], rec)
            served.extend([entry, entry] if kind == "duplicate" else [entry])
        served.sort(key=lambda s: (s[0], s[1]))
        return _Day(records, served, faults, malformed)


def _bad_timestamp(rng: Random, day: date) -> str:
    """Timestamps vendors really send: impossible clock values, a month 13, the MySQL zero date."""
    return rng.choice(
        [
            f"{day.isoformat()} {rng.randint(24, 29)}:{rng.randint(60, 99)}:00",
            f"{day.year}-13-{day.day:02d}T08:00:00+08:00",
            "0000-00-00 00:00:00",
        ]
    )
