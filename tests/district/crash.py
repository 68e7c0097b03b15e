"""A district run killed with SIGKILL in the middle of its k-th Iceberg data commit, for the tests and
the bench: `python -m tests.district.crash SETTINGS.json K before|after`.

`before`: the data and manifest files are written, the catalog is not yet updated;
`after`: the catalog has the new snapshot, the cursors are not yet saved.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table.update import AddSnapshotUpdate

from district.config import DistrictSettings
from district.ingest import gather


def main(settings_file: str, k: int, when: str) -> None:
    settings = DistrictSettings.model_validate_json(Path(settings_file).read_text())
    original = SqlCatalog.commit_table
    calls = 0

    def commit_table(self: SqlCatalog, table: Any, requirements: Any, updates: Any) -> Any:
        nonlocal calls
        data = any(isinstance(update, AddSnapshotUpdate) for update in updates)  # not a spec or schema change
        calls += data
        if data and calls == k and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(self, table, requirements, updates)
        if data and calls == k and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    SqlCatalog.commit_table = commit_table  # type: ignore[method-assign]
    gather(settings)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
