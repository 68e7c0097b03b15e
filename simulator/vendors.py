"""The door-access vendor (system 4): a daily export of door openings, dropped in a folder.

Like the real vendor's tool: a CSV in GBK with Chinese headers and CRLF line ends, card
numbers prefixed with a tab so Excel keeps them as text, rows grouped by door controller
rather than by time, and a few rows from controllers that were offline arriving a day
late. Deterministic from the community's seed. `export` writes the file under a
temporary name and renames it, as the vendor's uploader does; its options inject the
faults a drop folder sees: another or a wrong encoding, a cut-off file, XLSX instead of
CSV, and schema drift (an added, a renamed, or a retyped column).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from random import Random
from zoneinfo import ZoneInfo

from simulator.community import Community, Household, Resident

CST = ZoneInfo("Asia/Shanghai")
HEADERS = ["记录ID", "时间", "楼栋", "单元", "门禁点", "开门方式", "人员类型", "卡号/用户", "房屋", "结果"]
HOURLY = (1, 1, 0.5, 0.5, 0.5, 1, 4, 9, 8, 6, 6, 6, 7, 5, 5, 6, 7, 9, 10, 8, 6, 4, 3, 2)
DRIFTS = ("added_column", "renamed_column", "changed_type")
Row = dict[str, str]


@dataclass(frozen=True)
class DoorFaults:
    """Rates of the export's defects; deterministic from the seed."""

    malformed_rate: float = 0.005
    duplicate_rate: float = 0.003
    late_rate: float = 0.01  # rows from offline controllers, exported the next day

    @classmethod
    def none(cls) -> DoorFaults:
        """A vendor whose exports are clean."""
        return cls(malformed_rate=0.0, duplicate_rate=0.0, late_rate=0.0)


class DoorAccessVendor:
    """The access vendor's system at a community's building entrances."""

    def __init__(self, community: Community | None = None, faults: DoorFaults | None = None) -> None:
        self.community = community or Community()
        self.faults = faults if faults is not None else DoorFaults()
        rng = Random(f"{self.community.seed}:{self.community.community_id}:cards")
        self.cards: dict[str, list[str]] = {
            h.household_id: [f"{rng.getrandbits(32):08X}" for _ in range(rng.randint(1, 2))]
            for h in self.community.households
        }
        self.fault_log: dict[str, str] = {}

    def ground_truth(self) -> dict[str, list[str]]:
        """The identifiers an export can carry: card numbers, and the community's people."""
        truth = self.community.ground_truth()
        return {**truth, "cards": sorted(c for cards in self.cards.values() for c in cards)}

    def rows_for_day(self, day: date) -> list[Row]:
        """The export of `day`: its own events but the late ones, plus yesterday's late ones."""
        today = [r for r, late in self._events(day) if not late]
        yesterday = [r for r, late in self._events(day - timedelta(days=1)) if late]
        rows = today + yesterday
        # The vendor's tool exports controller by controller: out of time order.
        rows.sort(key=lambda r: (r["门禁点"], r["记录ID"]))
        return rows

    def export(
        self,
        folder: Path,
        day: date,
        encoding: str = "gbk",
        fmt: str = "csv",
        drift: str | None = None,
        truncate: bool = False,
        name: str | None = None,
    ) -> Path:
        """Write the day's export into `folder`/incoming (atomically); returns its path."""
        rows = [self._drifted(r, drift) for r in self.rows_for_day(day)]
        headers = list(rows[0]) if rows else HEADERS
        data = _xlsx(headers, rows) if fmt == "xlsx" else _csv(headers, rows, encoding)
        if truncate:  # the upload was cut off inside the last line
            data = data[: data.rstrip(b"\r\n").rfind(b"\n") + 26]
        target = folder / "incoming" / (name or f"门禁记录_{day:%Y%m%d}.{fmt}")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        return target

    # --- generation ----------------------------------------------------------------------------

    def _events(self, day: date) -> list[tuple[Row, bool]]:
        rng = Random(f"{self.community.seed}:{self.community.community_id}:{day.isoformat()}:doors")
        events: list[tuple[datetime, Household, Resident | None, str]] = []
        for h in self.community.households:
            for resident in h.residents:
                age = resident.age
                trips = rng.choice([0, 1]) if age >= 75 else rng.randint(1, 2) if age >= 60 else rng.randint(1, 3)
                events += [(self._at(rng, day), h, resident, "resident") for _ in range(trips)]
        for _ in range(len(self.community.households) // 3):
            events.append((self._at(rng, day), rng.choice(self.community.households), None, "visitor"))
        events.sort(key=lambda e: (e[0], e[1].household_id))
        out = []
        for n, (when, home, person, kind) in enumerate(events, start=1):
            row = self._row(rng, f"{day:%Y%m%d}{n:06d}", when, home, person, kind)
            late = rng.random() < self.faults.late_rate
            out.append((row, late))
            if rng.random() < self.faults.duplicate_rate:
                self.fault_log[row["记录ID"]] = "duplicate"
                out.append((dict(row), late))
        return out

    def _at(self, rng: Random, day: date) -> datetime:
        hour = rng.choices(range(24), weights=HOURLY)[0]
        return datetime.combine(day, time(hour)) + timedelta(seconds=rng.randrange(3600))

    def _row(self, rng: Random, record_id: str, when: datetime, h: Household, r: Resident | None, kind: str) -> Row:
        if r is None:
            method, person, credential = "密码", "访客", "访客密码"
        else:
            weights = [30, 10, 60, 0] if r.age >= 60 else [50, 25, 25, 0]
            method = rng.choices(["人脸", "微信", "刷卡", "密码"], weights)[0]
            person = "业主" if r.is_owner else "家属"
            credential = {"人脸": r.name, "微信": r.phone}.get(method) or "\t" + rng.choice(self.cards[h.household_id])
        row = {
            "记录ID": record_id,
            "时间": when.strftime("%Y-%m-%d %H:%M:%S"),
            "楼栋": f"{h.building}号楼",
            "单元": f"{h.unit}单元",
            "门禁点": f"{h.building}号楼{h.unit}单元单元门",
            "开门方式": method,
            "人员类型": person,
            "卡号/用户": credential,
            "房屋": h.address,
            "结果": "失败" if method == "人脸" and rng.random() < 0.03 else "成功",
        }
        if rng.random() < self.faults.malformed_rate:
            self._malform(rng, row)
        return row

    def _malform(self, rng: Random, row: Row) -> None:
        kind = rng.choice(["method", "time", "building"] + (["card"] if row["开门方式"] == "刷卡" else []))
        if kind == "method":
            row["开门方式"] = "指纹"  # a fingerprint reader the contract does not know
        elif kind == "time":
            row["时间"] = row["时间"][:11] + "24:61:07"
        elif kind == "building":
            row["楼栋"] = "号楼"
        else:
            card = row["卡号/用户"].strip()
            row["卡号/用户"] = card[:4] + "-" + card[4:]
        self.fault_log[row["记录ID"]] = f"malformed_{kind}"

    @staticmethod
    def _drifted(row: Row, drift: str | None) -> Row:
        if drift == "added_column":  # a firmware update added body temperature
            return {**row, "体温": "36.5"}
        if drift == "renamed_column":
            return {("用户信息" if k == "卡号/用户" else k): v for k, v in row.items()}
        if drift == "changed_type":  # times became epoch milliseconds
            stamp = datetime.strptime(row["时间"], "%Y-%m-%d %H:%M:%S") if row["时间"][11:13] != "24" else None
            millis = str(int(stamp.replace(tzinfo=CST).timestamp() * 1000)) if stamp else row["时间"]
            return {**row, "时间": millis}
        return row


def _csv(headers: list[str], rows: list[Row], encoding: str) -> bytes:
    def render(part: list[Row]) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerows([[r.get(h, "") for h in headers] for r in part])
        return buffer.getvalue()

    head = render([dict(zip(headers, headers, strict=True))])
    if encoding == "mixed":  # someone re-saved the second half in an editor as UTF-8
        half = len(rows) // 2
        return (head + render(rows[:half])).encode("gbk") + render(rows[half:]).encode("utf-8")
    return (head + render(rows)).encode(encoding)


def _xlsx(headers: list[str], rows: list[Row]) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("门禁记录")
    sheet.append(headers)
    for r in rows:
        sheet.append([r.get(h, "") for h in headers])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
