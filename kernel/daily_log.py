"""A service's log file, one per day: `<name>.log` is today's, `<name>.log.YYYY-MM-DD` earlier days'.

`neuron up` keeps each service's output (relay, collector, inbox, viid, the API, Airflow's
components) in `<state>/logs/<name>.log`. Appended to forever, one file would hold every
line since the hub was installed and no retention could forget part of it; rolled over
each day, `neuron retention run` deletes whole days past `service_log_retention_days`
(warehouse/log_retention.py). Days are UTC, as the files' modification times are.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO


def utc_today() -> date:
    return datetime.now(UTC).date()


def file_day(path: Path) -> date:
    """The UTC day a file was last written."""
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).date()


def rolled_path(path: Path, day: date) -> Path:
    """Where the log of an earlier `day` is kept (a second roll the same day gets a counter)."""
    target = path.with_name(f"{path.name}.{day.isoformat()}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{day.isoformat()}.{n}")
    return target


class DailyLog:
    """Append lines to `path`, moving it aside to `<name>.log.<day>` when the day changes."""

    def __init__(self, path: Path, today: Callable[[], date] = utc_today) -> None:
        self.path, self.today = path, today
        self.day = today()
        self._roll_if_old()
        self._file: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())

    def _roll_if_old(self) -> None:
        if self.path.exists() and file_day(self.path) < self.day:
            os.replace(self.path, rolled_path(self.path, file_day(self.path)))

    def write(self, line: str) -> None:
        day = self.today()
        if day != self.day:
            self._file.close()
            self.day = day
            self._roll_if_old()
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self._file.write(line)
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> DailyLog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
