"""Retention of the hub's logs: service logs and Airflow's task logs are forgotten on time.

No log line carries a raw value by rule, but a log still says when and how often each
household's devices, each vendor and each consumer did something, so it is not kept forever
(issue 16, item 2; docs/privacy-lifecycle.md):

- service logs, `<state>/logs/`: the output `neuron up` keeps of each service (relay,
  collector, inbox, viid, the API, Airflow's components), one file per day
  (kernel/daily_log.py); a day's file goes `service_log_retention_days` after it was last
  written, today's (`<name>.log`) only once nothing was written to it for that long;
- Airflow's logs, `<state>/airflow/logs` as `neuron up` sets Airflow up (`airflow_log_dir`
  where a deployment keeps them elsewhere; the `retention` DAG passes Airflow's own
  `[logging] base_log_folder`): one file per task try, plus the scheduler's and the DAG
  processor's; a file goes `task_log_retention_days` after it was last written, and the
  folders it leaves empty with it. Never read from the caller's environment: a retention run
  must not purge some other Airflow's logs.

Age is the file's modification time: a file still being written is never old.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from kernel.settings import Settings


def service_log_dir(settings: Settings) -> Path:
    """Where `neuron up` keeps its services' output."""
    return settings.state_path / "logs"


def airflow_log_dir(settings: Settings) -> Path:
    """The hub's Airflow log folder: `airflow_log_dir`, or where `neuron up` puts it."""
    if settings.airflow_log_dir is not None:
        return settings.resolve(settings.airflow_log_dir)
    return settings.state_path / "airflow" / "logs"


def purge_old_files(folder: Path, before: datetime) -> list[str]:
    """Delete every file under `folder` last written before `before`, then the folders left
    empty; the deleted files' paths relative to `folder` (names of services, DAGs and tasks:
    no value)."""
    if not folder.is_dir():
        return []
    purged = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue  # Airflow's `latest` links, and folders (below)
        if datetime.fromtimestamp(path.stat().st_mtime, UTC) < before:
            path.unlink()
            purged.append(str(path.relative_to(folder)))
    # Deepest first, so a folder emptied below is seen empty; a `latest` link to a folder just
    # removed is dangling by then and goes too.
    for path in sorted((p for p in folder.rglob("*") if p.is_dir() and not p.is_symlink()), reverse=True):
        for link in path.iterdir():
            if link.is_symlink() and not link.exists():
                link.unlink()
        if not any(path.iterdir()):
            path.rmdir()
    return purged
