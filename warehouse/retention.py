"""Retention: the raw vault and the quarantine are purged once their configured periods
have passed (`vault_retention_days`, `quarantine_retention_days`), and every purge is an
entry in the audit log, so an admin can see that what the hub promised to forget is gone.

Run by `neuron retention run` and daily by the `retention` DAG. It opens the warehouse
to delete quarantine rows, so it takes the DuckDB writer slot like any other writer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kernel.settings import Settings
from warehouse import vault
from warehouse.audit import append_audit
from warehouse.control import session_scope
from warehouse.staging import warehouse

log = logging.getLogger(__name__)


@dataclass
class RetentionReport:
    """What one retention run purged."""

    vault_objects: list[str] = field(default_factory=list)
    quarantine_rows: dict[str, int] = field(default_factory=dict)  # batch id → rows purged

    def summary(self) -> dict[str, Any]:
        """Counts only: safe for logs and XCom."""
        return {"vault_objects": len(self.vault_objects), "quarantine_rows": sum(self.quarantine_rows.values())}


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


def run_retention(settings: Settings, now: datetime | None = None) -> RetentionReport:
    """Purge expired vault objects and old quarantine rows; one audit entry per purge."""
    now = now or datetime.now(UTC)
    report = RetentionReport()
    report.vault_objects = vault.purge_expired(settings.vault_dir, now)
    report.quarantine_rows = purge_quarantine(settings, now - timedelta(days=settings.quarantine_retention_days))
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
    log.info(
        "retention: %(vault_objects)d vault object(s), %(quarantine_rows)d quarantine row(s) purged", report.summary()
    )
    return report
