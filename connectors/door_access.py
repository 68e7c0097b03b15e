"""System 4, door access: the access vendor's daily export of door openings per building
entrance (face, WeChat, card, password), a GBK CSV with Chinese headers in a drop folder.

The export has one column, 卡号/用户, whose meaning depends on how the door was opened:
a card number, the resident's name (face), or the phone bound to WeChat. It is split
into `card_no`, `person_name` and `phone`, so each is pseudonymised with its own kind
and joins the same person's tokens in other streams. Codes are translated to the
contract's (人脸 → face); a value we do not know is passed on as it is, so the
contract's checks quarantine it with a reason instead of it being silently mapped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from connectors.base import SourceState, records_to_raw_batch
from connectors.filedrop import FileDrop, FileDropSource
from kernel.errors import ConfigError
from schemas.contract import Contract

BATCH_ROWS = 5000
HEADERS = {
    "记录ID": "record_id",
    "时间": "event_time",
    "楼栋": "building",
    "单元": "unit",
    "门禁点": "door_name",
    "开门方式": "method",
    "人员类型": "person_type",
    "房屋": "address",
    "结果": "result",
}
CREDENTIAL = "卡号/用户"
REQUIRED = {"时间", "楼栋", "单元", "开门方式"}  # enough to know the file is this export, decoded right
METHODS = {"人脸": "face", "微信": "wechat", "刷卡": "card", "密码": "password"}
CREDENTIAL_FIELD = {"card": "card_no", "face": "person_name", "wechat": "phone"}  # passwords name nobody
PERSON_TYPES = {"业主": "owner", "家属": "family", "租户": "tenant", "访客": "visitor", "物业": "staff"}
RESULTS = {"成功": "success", "失败": "failure"}
_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_NUMBERED = re.compile(r"^(\d+)(号楼|单元)$")


class DoorAccess:
    """Door openings from the files dropped since the last run."""

    def __init__(self, settings: Any, contract: Contract, state: SourceState | None = None):
        self.contract, self.name = contract, contract.name
        self.source: FileDropSource = settings.door_access
        self.community_id: str = settings.community_id
        if state is None or state.drop_ledger is None:
            raise ConfigError("door_access: the file-drop family needs the runner's drop ledger")
        if state.drop_sealer is None:
            # The export names residents: it is never kept in clear (docs/privacy-lifecycle.md).
            raise ConfigError("door_access: the file-drop family needs the runner's sealer")
        self.drop = FileDrop(
            settings.resolve(self.source.folder),
            self.name,
            state.drop_ledger,
            self.source.suffixes,
            self.source.max_file_bytes,
            sealer=state.drop_sealer,
        )
        self.tz = ZoneInfo(self.source.timezone)

    def extract(self, since: datetime, until: datetime) -> Iterator[pa.RecordBatch]:
        """Yield the rows of every file this window takes, in batches."""
        for dropped in self.drop.collect(since, until, REQUIRED):
            # Rows stream from the file a batch at a time: a large export never sits in memory whole.
            records = (self.record(row, dropped.name) for row in dropped.table.records())
            while batch := list(islice(records, BATCH_ROWS)):
                yield records_to_raw_batch(self.contract, batch)

    def record(self, row: dict[str, str | None], file_name: str) -> dict[str, Any]:
        """One export row in the contract's terms (unknown headers kept, by name, as drift)."""
        out: dict[str, Any] = {"community_id": self.community_id, "source_file": file_name}
        for header, value in row.items():
            if header != CREDENTIAL:
                out[HEADERS.get(header, header)] = value
        out["event_time"] = self._aware(out.get("event_time"))
        for name in ("building", "unit"):
            match = _NUMBERED.match(out.get(name) or "")
            out[name] = match.group(1) if match else out.get(name)
        out["method"] = METHODS.get(out.get("method") or "", out.get("method"))
        out["person_type"] = PERSON_TYPES.get(out.get("person_type") or "", out.get("person_type"))
        out["result"] = RESULTS.get(out.get("result") or "", out.get("result"))
        field = CREDENTIAL_FIELD.get(out["method"] or "")
        if field is not None and CREDENTIAL in row:
            out[field] = row[CREDENTIAL]
        return out

    def _aware(self, value: str | None) -> str | None:
        """The vendor's naive local time with its UTC offset; anything else as it came."""
        if value is None or not _LOCAL_TIME.match(value):
            return value
        try:
            return datetime.fromisoformat(value).replace(tzinfo=self.tz).isoformat()
        except ValueError:  # 24:61:07 and the like: left for the contract to reject
            return value
