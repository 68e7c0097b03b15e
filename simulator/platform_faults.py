"""The platform's known defects, injected into a day's writes: malformed values, values out
of range, and the e-vote page's double submissions.

Every fault is chosen to break exactly one rule of the stream's contract (a pattern, an
allowed set, a range), so tests can predict the quarantine reason. Faults that merely
arrive late (cash payments typed in the next morning, paper ballots) are ordinary
platform behaviour and live in platform_activity.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from random import Random
from typing import Any

from simulator.platform_activity import Row, Write

FaultFn = Callable[[Random, Row], Any]  # the faulty value, or None where it does not apply


@dataclass(frozen=True)
class PlatformFaults:
    """Rates of the platform's defects; deterministic from the simulator's seed."""

    malformed_rate: float = 0.01
    out_of_range_rate: float = 0.005
    duplicate_rate: float = 0.02  # of ballots: submitted twice
    # Every table written on a day gets at least one bad row, so every stream's window
    # shows its quarantine path; with rates alone a quiet table would seldom get one.
    at_least_one_daily: bool = True

    @classmethod
    def none(cls) -> PlatformFaults:
        """A platform without defects."""
        return cls(malformed_rate=0.0, out_of_range_rate=0.0, duplicate_rate=0.0, at_least_one_daily=False)


def _some(value: Any, fn: Callable[[Any], Any]) -> Any:
    return None if value is None else fn(value)


# table -> [(kind, field, how the vendor breaks it)]
FAULTS: dict[str, list[tuple[str, str, FaultFn]]] = {
    "households": [
        ("out_of_range", "arrears_fen", lambda rng, r: -rng.randint(100, 5000)),
        ("malformed", "address", lambda rng, r: f"{r['building']}-{r['unit']}-{r['address'][-4:-1]}"),
    ],
    "residents": [
        ("malformed", "phone", lambda rng, r: r["phone"][:10]),
        ("malformed", "id_number", lambda rng, r: r["id_number"][:17]),
        ("out_of_range", "age", lambda rng, r: rng.choice([150, 204, -1])),
        ("malformed", "gender", lambda rng, r: {"M": "男", "F": "女"}.get(r["gender"], "未知")),
    ],
    "notices": [("malformed", "category", lambda rng, r: "通知")],
    "fee_payments": [
        ("out_of_range", "amount_fen", lambda rng, r: -abs(r["amount_fen"]) or -100),
        ("malformed", "channel", lambda rng, r: "微信支付"),
    ],
    "votes": [("malformed", "choice", lambda rng, r: {"agree": "同意", "oppose": "反对"}.get(r["choice"], "弃权"))],
    "volunteers": [
        ("out_of_range", "hours", lambda rng, r: _some(r["hours"], lambda h: h + 24)),
        ("malformed", "status", lambda rng, r: "已报名"),
    ],
    "repairs": [
        ("out_of_range", "rating", lambda rng, r: _some(r["rating"], lambda _: 9)),
        ("malformed", "category", lambda rng, r: "其他"),
    ],
    "circle_posts": [
        ("out_of_range", "likes", lambda rng, r: -rng.randint(1, 5)),
        ("malformed", "circle", lambda rng, r: "闲置"),
    ],
    "consent": [("malformed", "function", lambda rng, r: "face_pay")],
}


def inject(rng: Random, faults: PlatformFaults, writes: list[Write]) -> list[Write]:
    """The day's writes with faults applied; a faulted row carries `_fault = (kind, field)`."""
    out: list[Write] = []
    faulted: set[str] = set()
    for table, row in writes:
        kinds = FAULTS.get(table, [])
        u = rng.random()
        wanted = "malformed" if u < faults.malformed_rate else None
        if wanted is None and u < faults.malformed_rate + faults.out_of_range_rate:
            wanted = "out_of_range"
        if wanted and _break(rng, row, [k for k in kinds if k[0] == wanted] or kinds):
            faulted.add(table)
        out.append((table, row))
        if table == "votes" and rng.random() < faults.duplicate_rate:
            again = {**row, "ballot_id": row["ballot_id"] + "D", "_fault": ("duplicate", "ballot_id")}
            again["updated_at"] = again["cast_at"] = row["updated_at"] + timedelta(seconds=rng.randint(5, 60))
            out.append((table, again))
    if faults.at_least_one_daily:
        for table in sorted({t for t, _ in out} - faulted):
            candidates = [row for t, row in out if t == table and "_fault" not in row]
            for row in rng.sample(candidates, len(candidates)):
                if _break(rng, row, FAULTS.get(table, [])):
                    break
    return out


def _break(rng: Random, row: Row, kinds: list[tuple[str, str, FaultFn]]) -> bool:
    """Apply the first applicable fault of `kinds` (in random order) to `row`, in place."""
    for kind, field, fn in rng.sample(kinds, len(kinds)):
        value = fn(rng, row)
        if value is not None and value != row.get(field):
            row[field] = value
            row["_fault"] = (kind, field)
            return True
    return False
