"""System 9, the WeChat platform 「音乐之声」: its backend tables, each one stream.

Every platform stream reads one table of the platform's database through the SQL family
(connectors/sql.py) from the hub's `platform` source. The stream modules
(`platform_residents.py`, ...) only name the stream and its table; the contract's
`cursor_field` is the table's update time and the table's own primary key pages it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from connectors.base import SourceState, records_to_raw_batch
from connectors.sql import SqlSource, read_window
from schemas.contract import Contract
from transport.sql import read_only_engine


class PlatformTable:
    """One table of the platform's database, read incrementally as a stream."""

    def __init__(self, settings: Any, contract: Contract, state: SourceState | None = None):
        self.contract, self.name = contract, contract.name
        self.table: str = contract.source.table if contract.source and contract.source.table else ""
        self.source: SqlSource = settings.platform

    def extract(self, since: datetime, until: datetime) -> Iterator[pa.RecordBatch]:
        """Yield one raw batch per page of rows updated in [since, until)."""
        engine = read_only_engine(self.source.url.get_secret_value(), self.source.timeout_seconds)
        try:
            pages = read_window(
                engine,
                self.table,
                self.contract.cursor_field,
                since,
                until,
                self.source.batch_size,
                ZoneInfo(self.source.timezone),
                self.source.db_schema,
            )
            for page in pages:
                yield records_to_raw_batch(self.contract, page)
        finally:
            # No pooled connection outlives the extract: the platform is not ours to hold open.
            engine.dispose()
