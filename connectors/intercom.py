"""System 5, video intercom and CCTV: the vendor's open API, read through the HTTP family.

The vendor pages by number inside an envelope (`code`, `msg`, `data.total`, `data.list`)
and reports its own errors with HTTP 200 and a non-zero `code`. Field names are
camelCase; contracts use the same names in snake_case (`updateTime` → `update_time`).
The vendor attaches image fields (snapshot URLs, Base64 pictures) to its records: they
are dropped here, by name, before anything is landed — the hub keeps metadata only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pyarrow as pa

from connectors.base import SourceState, records_to_raw_batch
from connectors.http import WindowBudget, get_json, http_session
from kernel.errors import FatalError, SourceAuthError
from kernel.settings import HttpSource
from schemas.contract import Contract

SOURCE = "intercom vendor API"
# Fields that hold or point to pictures: never ingested, whatever the vendor sends.
IMAGE_FIELDS = frozenset({"snapshotUrl", "picUrl", "bgPicBase64", "facePicBase64", "faceUrl", "picture"})
AUTH_CODES = frozenset({"0x02401003", "0x02401004"})  # token invalid / expired
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


# Declared with the hub's settings (kernel/settings.py); re-exported for the family's users.
__all__ = ["HttpSource"]


def snake(name: str) -> str:
    """`updateTime` → `update_time`."""
    return _CAMEL.sub("_", name).lower()


def metadata_only(record: Any) -> Any:
    """A vendor record without its image fields, in the contract's field names (a row that is
    not an object is passed on as it is, to be quarantined)."""
    if not isinstance(record, dict):
        return record
    return {snake(str(k)): v for k, v in record.items() if k not in IMAGE_FIELDS}


def vendor_pages(
    session: Any, url: str, params: dict[str, Any], timeout: float, budget: WindowBudget | None = None
) -> Iterator[list[Any]]:
    """Yield the pages of a window, numbered from 1, until the vendor's total is reached."""
    budget = budget or WindowBudget(SOURCE)
    page, seen = 1, 0
    while True:
        budget.next_page()
        body = get_json(session, url, {**params, "pageNo": page}, timeout, SOURCE, budget)
        code = str(body.get("code"))[:20] if isinstance(body, dict) else None
        if code in AUTH_CODES:
            raise SourceAuthError(f"{SOURCE}: credentials refused (vendor code {code})")
        if code != "0" or not isinstance(body.get("data"), dict) or not isinstance(body["data"].get("list"), list):
            raise FatalError(f"{SOURCE}: error answer (vendor code {code})")
        rows, total = body["data"]["list"], body["data"].get("total") or 0
        if not isinstance(total, int) or isinstance(total, bool):
            raise FatalError(f"{SOURCE}: answer's data.total is not an integer")
        yield rows
        seen += len(rows)
        if not rows or seen >= total:
            return
        page += 1


class IntercomStream:
    """One resource of the vendor's API, read by update time."""

    def __init__(self, settings: Any, contract: Contract, state: SourceState | None = None):
        self.contract, self.name = contract, contract.name
        self.resource: str = contract.source.resource if contract.source and contract.source.resource else ""
        self.source: HttpSource = settings.intercom

    def extract(self, since: datetime, until: datetime) -> Iterator[pa.RecordBatch]:
        """Yield one raw batch per page of records updated in [since, until)."""
        session = http_session(self.source.token.get_secret_value(), self.source.max_retries)
        url = f"{self.source.base_url.rstrip('/')}/openapi/v1/{self.resource}"
        params = {"startTime": since.isoformat(), "endTime": until.isoformat(), "pageSize": self.source.page_size}
        with session:
            budget = WindowBudget(SOURCE, self.source.window_seconds, self.source.max_pages)
            for page in vendor_pages(session, url, params, self.source.timeout_seconds, budget):
                if page:
                    yield records_to_raw_batch(self.contract, [metadata_only(r) for r in page])
