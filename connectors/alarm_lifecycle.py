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

from connectors.base import records_to_raw_batch
from connectors.sql import read_only_engine, read_window
from privacy.keys import HubKeys
from privacy.room_cipher import RoomCipher
from schemas.contract import Contract, load_contract

TABLE = "relay_lifecycle"  # declared by relay/models.py (connectors do not import the relay)
UTC_ZONE = ZoneInfo("UTC")  # the control database stores UTC (naive on SQLite)


class AlarmLifecycle:
    """Lifecycle events recorded by the relay in [since, until) of `recorded_at`."""

    name = "alarm_lifecycle"
    batch_size = 5000

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.contract: Contract = load_contract(self.name)

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
