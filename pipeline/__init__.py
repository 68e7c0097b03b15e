"""The batch pipeline: the stages a source's window goes through, extract → land → validate →
de-identify → load → marts → publish. It joins the sources (connectors) to the store
(warehouse); Airflow tasks, the CLI and benchmarks call these functions."""

from pipeline.stages import (
    batch_id_for,
    build,
    cursor_value,
    event_days,
    extract,
    hold_warehouse,
    load,
    local_day_window,
    publish,
    run_window,
    validate,
)

__all__ = [
    "batch_id_for",
    "build",
    "cursor_value",
    "event_days",
    "extract",
    "hold_warehouse",
    "load",
    "local_day_window",
    "publish",
    "run_window",
    "validate",
]
