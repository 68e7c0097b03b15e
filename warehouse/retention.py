"""Retention: every raw or re-identifying copy the hub keeps is forgotten on time
(docs/privacy-lifecycle.md lists them): the raw vault and the drop folders' sealed exports
after `vault_retention_days`, quarantine rows after `quarantine_retention_days`, work files
a failed run left after a day. A drop file an older hub left in clear is sealed at once.
Every purge is an entry in the audit log, so an admin can see that what the hub promised
to forget is gone.

Run by `neuron retention run` and daily by the `retention` DAG. It opens the warehouse
to delete quarantine rows, so it takes the DuckDB writer slot like any other writer.
Service logs and Airflow's logs go after their own retentions (warehouse/log_retention.py).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.filedrop import FileDrop
from kernel.private import private_dir, private_file
from kernel.settings import Settings
from privacy.file_seal import FileSealer
from privacy.keys import HubKeys
from warehouse import vault
from warehouse.audit import append_audit
from warehouse.control import session_scope
from warehouse.drop_ledger import ControlDropLedger
from warehouse.log_retention import airflow_log_dir, purge_old_files, service_log_dir
from warehouse.staging import warehouse

log = logging.getLogger(__name__)

# Work files live between a batch's validate and load tasks (minutes); a day covers retries.
WORK_RETENTION = timedelta(days=1)


@dataclass
class RetentionReport:
    """What one retention run purged."""

    vault_objects: list[str] = field(default_factory=list)
    quarantine_rows: dict[str, int] = field(default_factory=dict)  # batch id → rows purged
    drop_files_sealed: list[str] = field(default_factory=list)  # source/file, left in clear by an older hub
    drop_files: list[str] = field(default_factory=list)  # source/file, sealed exports past retention
    work_batches: list[str] = field(default_factory=list)  # work folders a failed run left
    service_logs: list[str] = field(default_factory=list)  # `neuron up`'s log files (a service's day)
    task_logs: list[str] = field(default_factory=list)  # Airflow's log files (a task try, a scheduler day)

    def summary(self) -> dict[str, Any]:
        """Counts only: safe for logs and XCom."""
        return {
            "vault_objects": len(self.vault_objects),
            "quarantine_rows": sum(self.quarantine_rows.values()),
            "drop_files_sealed": len(self.drop_files_sealed),
            "drop_files": len(self.drop_files),
            "work_batches": len(self.work_batches),
            "service_logs": len(self.service_logs),
            "task_logs": len(self.task_logs),
        }


def drop_folders(settings: Settings) -> list[FileDrop]:
    """The configured file-drop sources' folders (those that exist)."""
    folder = settings.resolve(settings.door_access.folder)
    if not folder.is_dir():
        return []
    sealer = FileSealer(HubKeys.load(settings))
    ledger = ControlDropLedger(settings.control_url)
    return [FileDrop(folder, "door_access", ledger, settings.door_access.suffixes, sealer=sealer)]


def purge_work(settings: Settings, before: datetime) -> list[str]:
    """Delete work folders last written before `before` (a loaded batch deletes its own)."""
    if not settings.work_dir.is_dir():
        return []
    purged = []
    for path in sorted(settings.work_dir.iterdir()):
        if datetime.fromtimestamp(path.stat().st_mtime, UTC) < before:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
            purged.append(path.name)
    return purged


def purge_quarantine(settings: Settings, before: datetime) -> dict[str, int]:
    """Delete quarantine rows quarantined before `before`; rows purged per batch."""
    if not settings.warehouse_file.exists():
        return {}
    with warehouse(settings.warehouse_file) as con:
        exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'quarantine'")
        if not exists.fetchall()[0][0]:
            return {}
        counts = con.execute(
            "SELECT batch_id, count(*) FROM quarantine WHERE quarantined_at < ? GROUP BY batch_id ORDER BY batch_id",
            [before],
        ).fetchall()
        con.execute("DELETE FROM quarantine WHERE quarantined_at < ?", [before])
    return {batch: int(n) for batch, n in counts}


def run_retention(settings: Settings, now: datetime | None = None, task_log_dir: Path | None = None) -> RetentionReport:
    """Purge expired vault objects, old quarantine rows and old logs; one audit entry per purge.
    `task_log_dir`: Airflow's log folder, as the running Airflow says (default: the hub's)."""
    now = now or datetime.now(UTC)
    report = RetentionReport()
    # A hub made before files were created private gets its state closed here too.
    private_dir(settings.state_path, restrict=True)
    private_file(settings.warehouse_file)
    if settings.control_url.startswith("sqlite:///"):
        private_file(Path(settings.control_url.removeprefix("sqlite:///")))
    report.vault_objects = vault.purge_expired(settings.vault_dir, now)
    report.quarantine_rows = purge_quarantine(settings, now - timedelta(days=settings.quarantine_retention_days))
    for drop in drop_folders(settings):
        report.drop_files_sealed += [f"{drop.source}/{f}" for f in drop.seal_clear_files()]
        before = now - timedelta(days=settings.vault_retention_days)
        report.drop_files += [f"{drop.source}/{f}" for f in drop.purge_kept(before)]
    report.work_batches = purge_work(settings, now - WORK_RETENTION)
    report.service_logs = purge_old_files(
        service_log_dir(settings), now - timedelta(days=settings.service_log_retention_days)
    )
    task_logs = task_log_dir or airflow_log_dir(settings)
    report.task_logs = purge_old_files(task_logs, now - timedelta(days=settings.task_log_retention_days))
    with session_scope(settings.control_url) as session:
        for object_id in report.vault_objects:
            append_audit(
                session,
                actor="hub",
                action="purge",
                outcome="purged",
                detail={"store": "raw_vault", "object": object_id, "retention_days": settings.vault_retention_days},
                at=now,
            )
        for batch_id, rows in report.quarantine_rows.items():
            append_audit(
                session,
                actor="hub",
                action="purge",
                outcome="purged",
                rows=rows,
                detail={"store": "quarantine", "batch": batch_id, "retention_days": settings.quarantine_retention_days},
                at=now,
            )
        detail: dict[str, Any]
        for name in report.drop_files_sealed:
            detail = {"store": "drop_folder", "file": name, "protection": "sealed"}
            append_audit(session, actor="hub", action="seal", outcome="sealed", detail=detail, at=now)
        for name in report.drop_files:
            detail = {"store": "drop_folder", "file": name, "retention_days": settings.vault_retention_days}
            append_audit(session, actor="hub", action="purge", outcome="purged", detail=detail, at=now)
        for name in report.work_batches:
            detail = {"store": "work", "batch": name, "retention_days": WORK_RETENTION.days}
            append_audit(session, actor="hub", action="purge", outcome="purged", detail=detail, at=now)
        # One entry per store and run: a day of Airflow is hundreds of task logs.
        for store, files, days in (
            ("service_logs", report.service_logs, settings.service_log_retention_days),
            ("task_logs", report.task_logs, settings.task_log_retention_days),
        ):
            if files:
                detail = {"store": store, "files": len(files), "retention_days": days}
                append_audit(session, actor="hub", action="purge", outcome="purged", detail=detail, at=now)
    log.info(
        "retention: %(vault_objects)d vault object(s), %(quarantine_rows)d quarantine row(s), "
        "%(drop_files)d drop file(s), %(work_batches)d work folder(s), %(service_logs)d service log(s), "
        "%(task_logs)d task log(s) purged; "
        "%(drop_files_sealed)d drop file(s) sealed",
        report.summary(),
    )
    return report
