"""Rooms of the community's households, for alarms from in-home devices.

An in-home device's alarm names its household, never its room, yet public security's policy
entitles it to the room (sealed to its key): where the smoke is, not only which entrance. The
WeChat platform's `households` table (system 9) is the community's register of rooms, so the
relay reads it — read-only, as the platform's connectors do — at start-up and every
`rooms_refresh_seconds`, and keeps household → room in memory only.

A room is a direct identifier. It leaves the relay sealed to an entitled consumer (the
`seal` list of its upstream), and reaches the control database only encrypted
(`privacy.room_cipher.RoomCipher`, AES-256-GCM under a key derived from the master secret),
as the raw vault keeps raw values: the `alarm_lifecycle` stream opens it on its way into the encrypted raw
landing, and de-identification pseudonymises and seals it there like any raw room.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

from sqlalchemy import MetaData, Table, select
from sqlalchemy.exc import SQLAlchemyError

from kernel.errors import NeuronError
from kernel.settings import SqlSource
from transport.sql import read_only_engine

log = logging.getLogger(__name__)

# The platform's address as residents write it: 3号楼2单元302室 (building, entrance, room).
_ROOM = re.compile(r"^[0-9]+号楼[0-9]+单元([0-9]{3,4})室$")


def room_of_address(address: str | None) -> str | None:
    """The room number in a platform address, or None when the address is not one."""
    found = _ROOM.match(address.strip()) if address else None
    return found.group(1) if found else None


def read_rooms(source: SqlSource, community_id: str) -> dict[str, str]:
    """household_id → room of this community from the platform's `households` table (rows whose
    address is not one are left out: the room of such a household is unknown, not guessed)."""
    engine = read_only_engine(source.url.get_secret_value(), source.timeout_seconds)
    try:
        households = Table("households", MetaData(schema=source.db_schema), autoload_with=engine)
        query = select(households.c.household_id, households.c.address)
        if "community_id" in households.c:  # a platform serving several communities
            query = query.where(households.c.community_id == community_id)
        with engine.connect() as conn:
            rooms = {}
            for household_id, address in conn.execute(query):
                room = room_of_address(address)
                if household_id is not None and room is not None:
                    rooms[str(household_id)] = room
            return rooms
    finally:
        engine.dispose()


class RoomDirectory:
    """household_id → room, refreshed from the platform in the background (memory only)."""

    def __init__(
        self,
        source: SqlSource | None,
        community_id: str,
        refresh_seconds: float,
        reader: Callable[[SqlSource, str], dict[str, str]] = read_rooms,
    ) -> None:
        configured = source is not None and bool(source.url.get_secret_value())
        self.source = source if configured else None
        self.community_id = community_id
        self.refresh_seconds = refresh_seconds
        self._reader = reader
        self._rooms: dict[str, str] = {}
        self.loaded = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="relay-rooms", daemon=True)

    def room_of(self, household_id: str | None) -> str | None:
        return self._rooms.get(household_id) if household_id else None

    def refresh(self) -> bool:
        """Read the register again; on failure keep the rooms known so far (a clear log line, no value)."""
        if self.source is None:
            return False
        try:
            rooms = self._reader(self.source, self.community_id)
        except (SQLAlchemyError, OSError, NeuronError) as exc:  # never stops the relay
            log.warning(
                "relay: cannot read the platform's households for rooms (%s); keeping %d known",
                type(exc).__name__,
                len(self._rooms),
            )
            return False
        self._rooms, self.loaded = rooms, True  # one reference swap: readers never see half a table
        log.info("relay: %d households' rooms read from the platform", len(rooms))
        return True

    def start(self) -> None:
        if self.source is None:
            log.info("relay: no platform source configured; alarms carry no room")
            return
        self.refresh()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            self.refresh()
