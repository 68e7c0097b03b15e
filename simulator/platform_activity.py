"""One day on the WeChat platform: what residents, staff and nightly jobs write to its tables.

Pure and deterministic: given the community, the tables as they stood at the end of the
day before, and the day, it returns the row versions written that day, in time order.
Times are naive local time in whole seconds, as the platform's DATETIME columns hold
them. Two nightly jobs stamp many rows with one `updated_at` (the arrears job at 02:00,
the likes counter at 23:00), which is what incremental readers get wrong at page ends.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from random import Random
from typing import Any

from simulator.community import Community
from simulator.platform_schema import KEYS
from simulator.platform_text import NOTICE_CATEGORIES, notice_text

Row = dict[str, Any]
Write = tuple[str, Row]  # (table, the row's new full version)
Tables = dict[str, dict[str, Row]]  # table -> its id -> current row

IMPORT_AT = time(0, 30)  # the day the platform went live, its data was imported in one go
ARREARS_JOB_AT = time(2, 0)
LIKES_JOB_AT = time(23, 0)
FEE_FEN_PER_M2 = 150  # property fee: 1.50 yuan per square metre per month
PARKING_FEE_FEN = 15_000
MOTION = ("M2026-01", "关于使用专项维修资金更换3-12号楼屋面防水层的表决", 14)  # id, title, days open
PUBLISHERS = {"governance": "业主委员会", "community_event": "居民委员会"}
ACTIVITIES = ["elderly_visit", "waste_sorting", "security_patrol", "community_cleaning"]


def changed(row: Row, when: datetime, **changes: Any) -> Row:
    """A new version of `row`; a fault on a field the update rewrites is gone with it."""
    new = {**row, **changes, "updated_at": when}
    fault = row.get("_fault")
    if fault is not None and fault[1] in changes:
        del new["_fault"]
    return new


@dataclass
class PlatformDay:
    """The writes of one day, built from the state at the end of the day before."""

    community: Community
    tables: Tables
    day: date
    first_day: date
    seed: int
    view: Tables = field(init=False)  # the tables as the day's writes so far left them

    def __post_init__(self) -> None:
        self.view = {name: dict(rows) for name, rows in self.tables.items()}

    def rng(self, purpose: str) -> Random:
        return Random(f"{self.seed}:{self.community.community_id}:{self.day.isoformat()}:{purpose}")

    def at(self, rng: Random, first_hour: int, last_hour: int, day: date | None = None) -> datetime:
        start = datetime.combine(day or self.day, time(first_hour))
        return start + timedelta(seconds=rng.randrange((last_hour - first_hour) * 3600))

    def row(self, **values: Any) -> Row:
        """A row of this community (every platform table starts with community_id)."""
        return {"community_id": self.community.community_id, **values}

    def write(self, table: str, **values: Any) -> Write:
        return table, self.row(**values)

    def writes(self) -> list[Write]:
        """Every row version written on the day, in time order."""
        from simulator.platform_import import go_live_import
        from simulator.platform_life import consent, posts, repairs, volunteers

        first = [go_live_import] if self.day == self.first_day else []
        out: list[Write] = []
        # Each part sees what the parts before it wrote (the bills before the payments).
        for part in [*first, PlatformDay.arrears_job, PlatformDay.residents, PlatformDay.payments]:
            out += self._seen(part(self))
        for part in [PlatformDay.notices, PlatformDay.ballots, volunteers, repairs, posts, consent]:
            out += self._seen(part(self))
        return sorted(out, key=lambda w: w[1]["updated_at"])

    def _seen(self, writes: list[Write]) -> list[Write]:
        for table, row in writes:
            self.view.setdefault(table, {})[row[KEYS[table]]] = row
        return writes

    # --- the nightly jobs -------------------------------------------

    def arrears_job(self) -> list[Write]:
        """Monthly bills on the 1st (and at go-live); otherwise yesterday's payments settled."""
        when = datetime.combine(self.day, ARREARS_JOB_AT)
        households = self.view.get("households", {})
        if self.day.day == 1 or self.day == self.first_day:
            return [
                (
                    "households",
                    changed(h, when, arrears_fen=max(0, h["arrears_fen"]) + round(h["area_m2"] * FEE_FEN_PER_M2)),
                )
                for h in households.values()
            ]
        paid: dict[str, int] = {}
        for p in self.view.get("fee_payments", {}).values():
            if p["fee_type"] == "property" and p["updated_at"].date() == self.day - timedelta(days=1):
                paid[p["household_id"]] = paid.get(p["household_id"], 0) + abs(p["amount_fen"])
        return [
            ("households", changed(households[k], when, arrears_fen=max(0, households[k]["arrears_fen"] - v)))
            for k, v in sorted(paid.items())
            if k in households
        ]

    # --- residents and their activity --------------------------------------------------------

    def residents(self) -> list[Write]:
        rng = self.rng("residents")
        current = self.view.get("residents", {})
        unverified = sorted(k for k, r in current.items() if not r["verified"])
        out = []
        for key in rng.sample(unverified, min(4, len(unverified))):
            when = self.at(rng, 8, 22)
            out.append(("residents", changed(current[key], when, verified=True, verified_at=when)))
        return out

    def payments(self) -> list[Write]:
        rng = self.rng("payments")
        households = self.view.get("households", {})
        owing = sorted(k for k, h in households.items() if h["arrears_fen"] > 0)
        n = min(len(owing), round(len(households) * 0.04 * rng.uniform(0.6, 1.4)))
        chosen = [(k, "property", households[k]["arrears_fen"]) for k in rng.sample(owing, n)]
        chosen += [(k, "parking", PARKING_FEE_FEN) for k in rng.sample(sorted(households), min(len(households), 3))]
        out = []
        for i, (key, fee_type, amount) in enumerate(chosen, start=1):
            channel = rng.choices(["wechat", "bank", "cash"], [0.85, 0.05, 0.1])[0]
            if channel == "cash":  # paid at the office yesterday, typed in this morning: late
                paid_at, when = self.at(rng, 9, 17, self.day - timedelta(days=1)), self.at(rng, 9, 11)
            else:
                paid_at = self.at(rng, 7, 23)
                when = paid_at + timedelta(seconds=rng.randint(1, 3))
            trade = (
                None
                if channel == "cash"
                else ("42000" if channel == "wechat" else "BK")
                + "".join(rng.choice("0123456789") for _ in range(23 if channel == "wechat" else 14))
            )
            out.append(
                self.write(
                    "fee_payments",
                    payment_id=f"P{self.day:%Y%m%d}{i:04d}",
                    household_id=key,
                    fee_type=fee_type,
                    period=f"{self.day:%Y-%m}",
                    amount_fen=amount,
                    channel=channel,
                    trade_no=trade,
                    paid_at=paid_at,
                    updated_at=when,
                )
            )
        return out

    def notices(self) -> list[Write]:
        rng = self.rng("notices")
        categories = ["governance"] if self.day == self.first_day else []
        categories += rng.sample(NOTICE_CATEGORIES, rng.choice([1, 2, 2, 3]))
        out = []
        for i, category in enumerate(categories, start=1):
            title, body = notice_text(rng, category, self.day.month, rng.randint(1, 30))
            when = self.at(rng, 8, 18)
            out.append(
                self.write(
                    "notices",
                    notice_id=f"N{self.day:%Y%m%d}{i:02d}",
                    title=title,
                    body=body,
                    category=category,
                    publisher=PUBLISHERS.get(category, "物业服务中心"),
                    published_at=when,
                    updated_at=when,
                )
            )
        return out

    def ballots(self) -> list[Write]:
        """Owners vote online while the motion is open; paper ballots are typed in later."""
        motion_id, title, days_open = MOTION
        if not 0 <= (self.day - self.first_day).days < days_open:
            return []
        rng = self.rng("ballots")
        voted = {b["resident_id"] for b in self.view.get("votes", {}).values()}
        households = self.view.get("households", {})
        owners = [r for r in self.community.residents if r.is_owner and r.resident_id not in voted]
        out = []
        for i, r in enumerate(o for o in owners if rng.random() < 0.12):
            when = self.at(rng, 7, 22)
            cast = when
            if rng.random() < 0.1 and self.day > self.first_day:  # a paper ballot, cast days ago
                cast = self.at(rng, 9, 18, max(self.first_day, self.day - timedelta(days=rng.randint(1, 3))))
                when = self.at(rng, 18, 21)
            choice = rng.choices(["agree", "oppose", "abstain"], [0.75, 0.12, 0.13])[0]
            area = households[r.household_id]["area_m2"] if r.household_id in households else 60.0
            ballot_id = f"B{self.day:%Y%m%d}{i:04d}"
            receipt = ballot_receipt(self.seed, self.community.community_id, ballot_id)
            out.append(
                self.write(
                    "votes",
                    ballot_id=ballot_id,
                    motion_id=motion_id,
                    motion_title=title,
                    resident_id=r.resident_id,
                    household_id=r.household_id,
                    choice=choice,
                    area_m2=area,
                    cast_at=cast,
                    receipt_commitment=receipt_commitment(receipt),
                    updated_at=when,
                    _receipt=receipt,  # on the voter's phone, not in the platform's database
                )
            )
        return out


def ballot_receipt(seed: int, community_id: str, ballot_id: str) -> str:
    """The receipt the vote page shows: 128 bits as 8 groups of 4 hex digits (docs/votes.md).
    A real platform draws them from a CSPRNG; the simulation derives them so runs repeat."""
    digits = f"{Random(f'{seed}:{community_id}:{ballot_id}:receipt').getrandbits(128):032x}"
    return "-".join(digits[i : i + 4] for i in range(0, 32, 4))


def receipt_commitment(receipt: str) -> str:
    """What the platform stores of a receipt: SHA-256 over the domain and its 32 hex digits."""
    digits = receipt.replace("-", "").lower()
    return hashlib.sha256(f"neuron-hub/ballot-receipt/v1:{digits}".encode()).hexdigest()
