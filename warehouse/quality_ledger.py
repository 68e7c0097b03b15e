"""The kept results of every batch's validation, in the control database.

One `BatchQuality` row per batch (a stream's window for one community), with the Great
Expectations outcome of each expectation and the quarantined row counts by reason as child
rows. The validate stage writes them in the same transaction as the load ledger; a re-run
of a batch replaces its rows. Only names and counts are kept, never a value: GX's own
result lists the unexpected values, and they may be plates.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from warehouse.models import BatchQuality, ExpectationResult, LoadRecord, QuarantineCount, utcnow


def keep_batch_quality(
    session: Session, record: LoadRecord, suite: str, summary: dict[str, Any], at: datetime | None = None
) -> BatchQuality:
    """Keep what validating `record`'s batch found (the validate stage's summary), replacing an
    earlier run of the same batch: a re-run never adds a second quality row."""
    batch_id = record.batch_id
    for model in (ExpectationResult, QuarantineCount, BatchQuality):
        session.execute(delete(model).where(model.batch_id == batch_id))
    expectations = summary.get("expectations") or []
    kept = BatchQuality(
        batch_id=batch_id,
        stream=record.stream,
        community_id=record.community_id,
        window_start=record.window_start,
        window_end=record.window_end,
        suite=suite,
        rows_in=summary["rows_in"],
        rows_loaded=0 if summary["rejected"] else summary["rows_good"],
        rows_quarantined=summary["rows_quarantined"],
        duplicates_dropped=summary.get("duplicates_dropped", 0),
        gx_success=all(e["success"] for e in expectations) if expectations else None,
        rejected=bool(summary["rejected"]),
        schema_drift="; ".join(summary.get("schema_drift") or []) or None,
        validated_at=at or utcnow(),
    )
    session.add(kept)
    session.flush()  # the parent row first: the children refer to it
    for position, e in enumerate(expectations):
        session.add(
            ExpectationResult(
                batch_id=batch_id,
                position=position,
                expectation=e["expectation"],
                column=e["column"],
                success=bool(e["success"]),
                unexpected=int(e["unexpected"]),
            )
        )
    reasons = sorted((summary.get("quarantined_by_reason") or {}).items())
    for position, (reason, rows) in enumerate(reasons):
        session.add(QuarantineCount(batch_id=batch_id, position=position, reason=reason, rows=int(rows)))
    return kept
