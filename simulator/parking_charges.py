"""The parking vendor's charges (system 1): one charge per visitor exit with a fee.

Derived from the passes the simulator already made, so a charge's plate, gate and
amount are those of its exit pass (including a misread plate). Visitors pay at the
exit by WeChat, Alipay or ETC, rarely in cash; a few leave without paying (the barrier
was up), and a few charges are refunded the next day after a complaint: a late update,
served again with a newer `updated_at`. Faults: charges served twice, and paid amounts
that are negative (the vendor's refund bug).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from random import Random
from typing import Any

from simulator.parking import CST, ParkingSimulator

Record = dict[str, Any]
METHODS = (["wechat", "alipay", "etc", "cash"], [55, 30, 10, 5])


def charges_for_day(sim: ParkingSimulator, day: date) -> list[tuple[datetime, str, Record]]:
    """The day's charges as served (with their late refunds and duplicates), unsorted."""
    return _build(sim, day)[0]


def charge_faults(sim: ParkingSimulator, day: date) -> dict[str, str]:
    """charge_id -> fault kind for the charges of `day`."""
    return _build(sim, day)[1]


def _build(sim: ParkingSimulator, day: date) -> tuple[list[tuple[datetime, str, Record]], dict[str, str]]:
    faults: dict[str, str] = {}
    rng = Random(f"{sim.seed}:{sim.community_id}:{day.isoformat()}:charges")
    served: list[tuple[datetime, str, Record]] = []
    for p in sim.passes_for_day(day):
        if p["vehicle_type"] != "visitor" or p["direction"] != "out" or not p.get("fee_fen"):
            continue
        try:
            exited = datetime.fromisoformat(p["pass_time"])
        except ValueError:  # the pass itself carries a broken time: the vendor drops the charge
            continue
        paid_at = exited + timedelta(seconds=rng.randint(5, 90))
        unpaid = rng.random() < 0.02
        charge: Record = {
            "charge_id": p["record_id"].replace("-", "-C", 1),
            "record_id": p["record_id"],
            "park_code": p["park_code"],
            "community_id": p["community_id"],
            "gate_code": p["gate_code"],
            "plate_no": p["plate_no"],
            "exit_time": p["pass_time"],
            "amount_fen": p["fee_fen"],
            "paid_fen": 0 if unpaid else p["fee_fen"],
            "pay_method": None if unpaid else rng.choices(*METHODS)[0],
            "status": "unpaid" if unpaid else "paid",
            "paid_at": None if unpaid else paid_at.isoformat(),
            "updated_at": paid_at.isoformat(),
        }
        u = rng.random()
        if u < sim.faults.malformed_rate / 2:
            charge["paid_fen"] = -charge["amount_fen"]  # the vendor's refund bug
            faults[charge["charge_id"]] = "negative_paid"
        entry = (paid_at, charge["charge_id"], charge)
        twice = u > 1 - sim.faults.duplicate_rate
        if twice:
            faults[charge["charge_id"]] = "duplicate"
        served += [entry, entry] if twice else [entry]
        if not unpaid and rng.random() < 0.01:  # refunded the next morning after a complaint
            refunded_at = datetime.combine(day + timedelta(days=1), datetime.min.time(), CST) + timedelta(
                hours=9, seconds=rng.randrange(7200)
            )
            refund = {**charge, "status": "refunded", "updated_at": refunded_at.isoformat()}
            served.append((refunded_at, charge["charge_id"], refund))
            faults.setdefault(charge["charge_id"], "late_refund")
    return served, faults


def charges_updated_between(sim: ParkingSimulator, since: datetime, until: datetime) -> list[Record]:
    """Charges as served with since <= updated_at < until, by (updated_at, charge_id)."""
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be timezone-aware")
    first = since.astimezone(CST).date() - timedelta(days=1)
    last = until.astimezone(CST).date()
    hits: list[tuple[datetime, str, Record]] = []
    for n in range((last - first).days + 1):
        hits += [s for s in charges_for_day(sim, first + timedelta(days=n)) if since <= s[0] < until]
    hits.sort(key=lambda s: (s[0], s[1]))
    return [dict(s[2]) for s in hits]
