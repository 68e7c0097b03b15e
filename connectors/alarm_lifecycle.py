"""The relay's alarm lifecycle events, read from the control database by the SQL family.

The relay (relay/) records every lifecycle event in the control-DB table `relay_lifecycle`
as it happens; this stream loads them incrementally by `recorded_at` into staging
(`stg_alarm_lifecycle`), where the `safety.alarms` mart is built. The control database is
read through the SQL family's read-only engine, keyset-paged on (recorded_at, event_id).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from connectors.base import SourceState, records_to_raw_batch
from connectors.sql import read_window
from privacy.keys import HubKeys
from privacy.room_cipher import RoomCipher
from schemas.contract import Contract
from transport.sql import read_only_engine

TABLE = "relay_lifecycle"  # declared in warehouse/models/relay.py (sources do not import the store)
UTC_ZONE = ZoneInfo("UTC")  # the control database stores UTC (naive on SQLite)


class AlarmLifecycle:
    """Lifecycle events recorded by the relay in [since, until) of `recorded_at`."""

    batch_size = 5000

    def __init__(self, settings: Any, contract: Contract, state: SourceState | None = None) -> None:
        self.contract, self.name = contract, contract.name
        self.settings = settings

    def extract(self, since: datetime, until: datetime) -> Iterator[pa.RecordBatch]:
        """Yield one raw batch per page of events recorded in the window."""
        engine = read_only_engine(self.settings.control_url)
        rooms = RoomCipher(HubKeys.load(self.settings), self.settings.community_id)
        try:
            for page in read_window(engine, TABLE, self.contract.cursor_field, since, until, self.batch_size, UTC_ZONE):
                for row in page:
                    # Kept encrypted by the relay; raw from here on, as every raw batch is (the
                    # landing encrypts it, de-identification pseudonymises and seals it).
                    row["room_no"] = rooms.decrypt(row.get("room_no"))
                yield records_to_raw_batch(self.contract, page)
        finally:
            engine.dispose()
