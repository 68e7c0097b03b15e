"""Consent comes from the platform: loading the `platform_consent` stream fills the consent store."""

from __future__ import annotations

from pathlib import Path

import duckdb

import pipeline
from tests.connectors.conformance import HARNESSES
from warehouse.consent import consenting_households


def test_loading_the_platform_consent_stream_records_each_households_choice(tmp_path: Path) -> None:
    with HARNESSES["platform_consent"](tmp_path) as run:
        for window in run.windows:
            pipeline.run_window(run.settings, "platform_consent", *window)
        with duckdb.connect(str(run.settings.warehouse_file), read_only=True) as con:
            latest = con.sql(
                "SELECT household_id_token, function, arg_max(granted, changed_at) AS granted "
                "FROM stg_platform_consent GROUP BY ALL"
            ).fetchall()
        for function in ("smoke_gas", "elderly_care"):
            consenting = consenting_households(run.settings, function)
            for token, f, granted in latest:
                if f == function:
                    assert (token in consenting) == granted
        assert any(granted for _, _, granted in latest)
