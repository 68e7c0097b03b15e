"""Retention: the raw vault and the quarantine are purged after their periods, and each purge
is in the audit log."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import duckdb
from sqlalchemy import select

import pipeline
from kernel.settings import Settings
from neuron.housekeeping import retention_run
from warehouse.audit import verify_chain
from warehouse.control import session_scope
from warehouse.models import AuditEntry
from warehouse.retention import run_retention


def test_expired_vault_objects_and_old_quarantine_rows_are_purged_and_audited(hub: Settings) -> None:
    start, end = pipeline.local_day_window(hub, date(2026, 11, 20))
    pipeline.run_window(hub, "vehicle_passes", start, end)
    objects = list(hub.vault_dir.glob("*.vault"))
    with duckdb.connect(str(hub.warehouse_file), read_only=True) as con:
        quarantined = con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0]
    assert objects and quarantined > 0

    first = run_retention(hub).summary()
    assert first["vault_objects"] == first["quarantine_rows"] == 0 and not any(first.values())  # nothing is old yet
    later = datetime.now(UTC) + timedelta(days=hub.quarantine_retention_days + 1)
    report = run_retention(hub, now=later)
    assert len(report.vault_objects) == len(objects) and sum(report.quarantine_rows.values()) == quarantined
    assert list(hub.vault_dir.glob("*.vault")) == []
    with duckdb.connect(str(hub.warehouse_file), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0] == 0
        assert con.execute("SELECT count(*) FROM stg_vehicle_passes").fetchall()[0][0] > 0  # staging stays
    with session_scope(hub.control_url) as s:
        purges = s.scalars(select(AuditEntry).where(AuditEntry.action == "purge")).all()
        assert {p.detail.split('"store":"')[1].split('"')[0] for p in purges if p.detail} == {"raw_vault", "quarantine"}
        assert len(purges) == len(report.vault_objects) + len(report.quarantine_rows)
        assert verify_chain(s) == []
    again = retention_run(hub)
    assert again["vault_objects"] == again["quarantine_rows"] == 0 and not any(again.values())  # idempotent
