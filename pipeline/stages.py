"""The batch path for one stream window: extract → land → validate → de-identify → load →
marts → publish (DESIGN.md, Data flow). Each stage is one function the Airflow tasks call;
stages hand over batch ids and files, never data through XCom.

Every stage can be re-run: extract re-lands the window, load replaces the batch, marts
are rebuilt, publish writes a new version only when bytes change. The cursor moves only
after the load has committed, so a run killed at any point loses nothing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy.exc import SQLAlchemyError

from connectors.base import SourceState, Stream, raw_schema
from connectors.registry import make_stream
from kernel.errors import BatchRejected, FatalError
from kernel.private import FILE_MODE, private_dir
from kernel.settings import Settings
from privacy.deidentify import deidentify, staging_derivations
from privacy.file_seal import FileSealer
from privacy.keys import HubKeys
from privacy.policy import load_policies
from privacy.roster import load_roster, update_roster
from schemas.contract import Contract, load_contract
from schemas.feeds import load_feeds
from schemas.validate import validate_batch
from warehouse import vault
from warehouse.control import session_scope
from warehouse.drop_ledger import ControlDropLedger
from warehouse.lake import control_error, lake_error, reconcile_lake
from warehouse.marts import build_marts
from warehouse.models import Cursor, LoadRecord, utcnow
from warehouse.publisher import Published, publish_feed
from warehouse.quality_ledger import keep_batch_quality
from warehouse.recipients import recipients_by_policy
from warehouse.staging import held_warehouse, load_batch, warehouse

log = logging.getLogger(__name__)


def batch_id_for(stream: str, community_id: str, start: datetime, end: datetime) -> str:
    """The identity of a window's batch: a re-run of the same window is the same batch."""
    fmt = "%Y%m%dT%H%M%SZ"
    return f"{stream}/{community_id}/{start.astimezone(UTC):{fmt}}-{end.astimezone(UTC):{fmt}}"


def _work_dir(settings: Settings, batch_id: str) -> Path:
    private_dir(settings.work_dir)
    return private_dir(settings.work_dir / batch_id.replace("/", "_"))


def _drop_work(settings: Settings, batch_id: str) -> None:
    """A loaded batch's work files are deleted: staging holds the rows now (a re-run
    validates again from the vault; retention removes what a failed run left)."""
    shutil.rmtree(settings.work_dir / batch_id.replace("/", "_"), ignore_errors=True)


def _ledger(settings: Settings, batch_id: str) -> LoadRecord:
    with session_scope(settings.control_url) as session:
        record = session.get(LoadRecord, batch_id)
        if record is None:
            raise FatalError(f"batch {batch_id}: not extracted yet")
        session.expunge(record)
        return record


def source_stream(settings: Settings, name: str) -> Stream:
    """The stream called `name`, with the state the runner keeps for it (the drop ledger)."""
    ledger = ControlDropLedger(settings.control_url)
    return make_stream(name, settings, SourceState(drop_ledger=ledger, drop_sealer=FileSealer(HubKeys.load(settings))))


def extract(settings: Settings, stream_name: str, start: datetime, end: datetime, stream: Stream | None = None) -> str:
    """Read the window from the source and land it, encrypted, in the raw vault.

    `stream` is the source already opened by the caller (a replay, a benchmark's generator);
    by default the configured source of `stream_name`."""
    if end <= start:
        raise FatalError(f"{stream_name}: empty window {start.isoformat()} – {end.isoformat()}")
    stream = stream or source_stream(settings, stream_name)
    batch_id = batch_id_for(stream_name, settings.community_id, start, end)
    batches = list(stream.extract(start, end))
    raw = pa.Table.from_batches(batches, schema=raw_schema(stream.contract))
    landed = vault.land(
        settings.vault_dir,
        HubKeys.load(settings),
        batch_id,
        raw,
        timedelta(days=settings.vault_retention_days),
    )
    with session_scope(settings.control_url) as session:
        record = session.get(LoadRecord, batch_id) or LoadRecord(batch_id=batch_id)
        record.stream, record.community_id = stream_name, settings.community_id
        record.window_start, record.window_end = start, end
        record.status, record.rows_extracted = "extracted", raw.num_rows
        record.rows_loaded = record.rows_quarantined = 0
        record.vault_object, record.started_at, record.finished_at = landed.object_id, utcnow(), None
        session.merge(record)
    log.info("%s: extracted %d records for window %s", stream_name, raw.num_rows, batch_id)
    return batch_id


def validate(settings: Settings, batch_id: str) -> dict[str, Any]:
    """Validate and de-identify a landed batch; leaves only de-identified files behind."""
    record = _ledger(settings, batch_id)
    contract = load_contract(record.stream)
    keys = HubKeys.load(settings)
    raw = vault.read(settings.vault_dir, keys, record.vault_object or batch_id)
    outcome = validate_batch(contract, raw, settings.community_id)
    update_roster(settings, keys, contract.name, outcome.good, outcome.rejected)  # residents feed the roster
    roster = load_roster(settings, keys)
    # Raw values exist only now: what entitled consumers need from them is made here.
    plan = staging_derivations(
        contract, load_feeds(), load_policies(settings.policies_dir), recipients_by_policy(settings)
    )
    staged = deidentify(contract, outcome.good, keys, plan, roster, settings.community_name).append_column(
        "_batch_id", pa.array([batch_id] * outcome.good.num_rows, pa.string())
    )
    quarantined = deidentify(contract, outcome.rejected, keys, roster=roster)
    work = _work_dir(settings, batch_id)
    schema = contract.staging_schema()
    schema = pa.schema([*schema, *(f for f in staged.schema if f.name not in schema.names)])
    _write_atomic(staged.select(schema.names).cast(schema), work / "staged.parquet")
    _write_atomic(quarantined, work / "quarantine.parquet")
    budget = contract.failure_budget if contract.failure_budget is not None else settings.failure_budget
    failed_share = outcome.rejected.num_rows / raw.num_rows if raw.num_rows else 0.0
    summary = {
        "rows_in": raw.num_rows,
        "rows_good": outcome.good.num_rows,
        "rows_quarantined": outcome.rejected.num_rows,
        "duplicates_dropped": outcome.duplicates_dropped,
        "quarantined_by_reason": outcome.reasons(),
        "expectations": outcome.expectations,
        "schema_drift": outcome.drift,
        "failure_budget": budget,
        # Small hourly batches would trip a bare share by chance: a batch is rejected only
        # when its failures exceed both the share and an absolute floor. A frozen contract
        # fails the window on any schema drift (the source changed: a person must look).
        "rejected": (failed_share > budget and outcome.rejected.num_rows > settings.failure_budget_min_rows)
        or (contract.evolution == "freeze" and bool(outcome.drift)),
    }
    with session_scope(settings.control_url) as session:
        row = session.get(LoadRecord, batch_id)
        assert row is not None
        row.status = "rejected" if summary["rejected"] else "validated"
        row.rows_quarantined = outcome.rejected.num_rows
        row.detail = json.dumps(summary, ensure_ascii=False, sort_keys=True)
        # The GX results are kept per batch (a re-run replaces them) for `neuron quality`.
        keep_batch_quality(session, row, f"{contract.name}.v{contract.version}", summary)
    log.info(
        "%s: %d good, %d quarantined, %d duplicates dropped",
        batch_id,
        outcome.good.num_rows,
        outcome.rejected.num_rows,
        outcome.duplicates_dropped,
    )
    return summary


def load(settings: Settings, batch_id: str) -> list[str]:
    """Load a validated batch into staging (replacing any earlier run of it), then advance
    the cursor. Returns the local days the batch touched, for publishing.

    A rejected batch loads only its quarantine rows, and fails: nothing is published.
    """
    record = _ledger(settings, batch_id)
    if record.status not in ("validated", "rejected", "loaded"):
        raise FatalError(f"batch {batch_id}: status {record.status!r}, validate it first")
    contract = load_contract(record.stream)
    work = _work_dir(settings, batch_id)
    if not (work / "staged.parquet").exists():
        raise FatalError(f"batch {batch_id}: its validated files are gone (loaded already?); run validate again")
    staged = pq.read_table(work / "staged.parquet")
    quarantined = pq.read_table(work / "quarantine.parquet")
    rejected = record.status == "rejected"
    with warehouse(settings.warehouse_file) as con:
        load_batch(con, contract, batch_id, staged.slice(0, 0) if rejected else staged, quarantined)
    _drop_work(settings, batch_id)
    if rejected:
        raise BatchRejected(
            f"batch {batch_id}: {record.rows_quarantined} of {record.rows_extracted} rows failed validation, "
            "over the failure budget; nothing loaded or published (see the quarantine)"
        )
    with session_scope(settings.control_url) as session:
        row = session.get(LoadRecord, batch_id)
        assert row is not None
        row.status, row.rows_loaded, row.finished_at = "loaded", staged.num_rows, utcnow()
        cursor = session.get(Cursor, (record.stream, record.community_id))
        if cursor is None:
            session.add(
                Cursor(stream=record.stream, community_id=record.community_id, value=record.window_end.isoformat())
            )
        elif datetime.fromisoformat(cursor.value) < record.window_end:
            cursor.value, cursor.updated_at = record.window_end.isoformat(), utcnow()
    if record.stream == "platform_consent":
        # The platform is where households opt in and out: its changes drive the consent store.
        from warehouse.consent import apply_platform_consent

        apply_platform_consent(settings, staged)
    return [d.isoformat() for d in event_days(settings, contract, staged)]


def event_days(settings: Settings, contract: Contract, staged: pa.Table) -> list[date]:
    """The local calendar days of the batch's events (late records touch earlier days)."""
    if staged.num_rows == 0:
        return []
    local = pc.local_timestamp(
        pc.assume_timezone(staged.column(contract.event_time).cast(pa.timestamp("us")), "UTC").cast(
            pa.timestamp("us", tz=settings.timezone)
        )
    )
    return sorted(set(pc.unique(local.cast(pa.date32())).to_pylist()))


def build(settings: Settings) -> list[str]:
    """Rebuild the marts."""
    with warehouse(settings.warehouse_file) as con:
        return build_marts(con)


def publish(settings: Settings, days: list[str] | None = None, feeds: list[str] | None = None) -> list[Published]:
    """Publish the given feeds (default all) for the given days (default all)."""
    catalog = load_feeds()
    policies = load_policies(settings.policies_dir)
    keys = HubKeys.load(settings)
    chosen = [catalog[name] for name in (feeds or sorted(catalog))]
    day_list = None if days is None else [date.fromisoformat(d) for d in days]
    written: list[Published] = []
    try:
        # What an interrupted publish left in the lake is finished or undone first (warehouse/lake.py).
        reconcile_lake(settings)
        with warehouse(settings.warehouse_file) as con:
            for feed in chosen:
                written += publish_feed(con, settings, keys, feed, policies, day_list)
    except SQLAlchemyError as exc:  # a read-only or unreachable control database: one line, no SQL
        raise control_error("cannot record the publish run", exc) from None
    except OSError as exc:  # the lake's folders: permissions, space
        raise lake_error("cannot publish", exc) from None
    return written


def cursor_value(settings: Settings, stream: str) -> datetime | None:
    """Where the stream's next incremental run starts (None: never loaded)."""
    with session_scope(settings.control_url) as session:
        cursor = session.get(Cursor, (stream, settings.community_id))
        return datetime.fromisoformat(cursor.value) if cursor else None


def hold_warehouse(settings: Settings) -> AbstractContextManager[Any]:
    """Keep the warehouse open across the stages run inside the block (one writer's turn; the
    lock is released when it ends): load, marts and publish then open it once, not each."""
    return held_warehouse(settings.warehouse_file)


def run_window(settings: Settings, stream: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Every stage for one window, in order (what the DAG does, in one process)."""
    batch_id = extract(settings, stream, start, end)
    summary = validate(settings, batch_id)
    with hold_warehouse(settings):
        days = load(settings, batch_id)
        build(settings)
        published = publish(settings, days)
    return {"batch_id": batch_id, **summary, "days": days, "published": len(published)}


def local_day_window(settings: Settings, day: date) -> tuple[datetime, datetime]:
    """The UTC instants bounding one local calendar day."""
    tz = ZoneInfo(settings.timezone)
    start = datetime.combine(day, datetime.min.time(), tzinfo=tz)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def _write_atomic(table: pa.Table, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)
