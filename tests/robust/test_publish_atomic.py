"""D5, D6: a publication is recorded and audited before its files can be seen; a read-only
control database or a full lake leaves nothing behind and says so in one line; the
reconciler finishes or undoes what a crash left; `neuron audit verify` checks the lake."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import pipeline
from kernel.errors import FatalError
from kernel.settings import Settings
from tests.warehouse.marts.fixtures_devices import ENVIRONMENT, new_hub, stage
from warehouse import lake
from warehouse.control import session_scope
from warehouse.models import AuditEntry, Partition

ENV = "env.air_quality_hourly"


@pytest.fixture
def hub(tmp_path: Path) -> Settings:
    settings = new_hub(tmp_path / "hub")
    stage(settings, "environment", "w1", ENVIRONMENT)
    pipeline.build(settings)
    return settings


def files(settings: Settings) -> list[str]:
    root = settings.lake_path
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.exists() else []


def read_only(settings: Settings) -> Settings:
    # The file's mode would not stop root; SQLite's read-only open does, for everyone.
    url = f"sqlite:///file:{settings.state_path / 'control.db'}?mode=ro&uri=true"
    copy = settings.model_copy(update={"control_db_url": url})
    copy.__dict__.pop("control_url", None)  # a cached property, copied with the rest
    return copy


def test_a_read_only_control_database_leaves_no_file_and_one_line(hub: Settings) -> None:
    with pytest.raises(FatalError) as caught:
        pipeline.publish(read_only(hub), feeds=[ENV])
    message = str(caught.value)
    assert message == "control database: cannot record a publication (the database is read-only)"
    assert "\n" not in message and "INSERT" not in message and "district" not in message  # no SQL, no parameters
    assert files(hub) == []  # before D5: a signed partition sat in the lake with no record


def test_a_full_lake_leaves_no_partial_file(hub: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(lake.os, "fsync", no_space)
    with pytest.raises(FatalError, match="No space left on device; free space in the lake"):
        pipeline.publish(hub, feeds=[ENV])
    assert files(hub) == []
    with session_scope(hub.control_url) as s:
        assert s.scalars(select(Partition)).first() is None


def test_the_reconciler_reveals_recorded_files_and_removes_unrecorded_ones(hub: Settings) -> None:
    published = pipeline.publish(hub, feeds=[ENV])
    assert published
    visible = files(hub)
    # A crash between the commit and the rename: the recorded file is still hidden.
    first = hub.lake_path / visible[0]
    os.replace(first, lake.hidden(first))
    # A file an older hub wrote before its commit failed: visible, with no record.
    stray = hub.lake_path / "district" / ENV / "community_id=x" / "v1.parquet"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"PAR1")
    problems = " | ".join(lake.lake_problems(hub))
    assert f"lake file {stray.relative_to(hub.lake_path).as_posix()} has no publication record" in problems
    assert "is an unfinished publication" in problems and "recorded but missing from the lake" in problems

    done = lake.reconcile_lake(hub)
    assert (done.revealed, done.removed) == (1, 1)
    assert files(hub) == visible and lake.lake_problems(hub) == []
    with session_scope(hub.control_url) as s:
        removal = s.scalars(select(AuditEntry).where(AuditEntry.action == "reconcile")).one()
        assert removal.outcome == "removed"


def test_audit_verify_names_a_lake_file_without_its_record_or_audit_entry(
    hub: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from neuron import cli

    pipeline.publish(hub, feeds=[ENV])
    monkeypatch.setattr(cli, "_settings", lambda: hub)
    runner = CliRunner()
    ok = runner.invoke(cli.app, ["audit", "verify"])
    assert ok.exit_code == 0 and "lake consistent" in ok.output
    with session_scope(hub.control_url) as s:  # the record goes (as with a read-only DB before D5)
        gone = s.scalars(select(Partition)).first()
        assert gone is not None
        path = gone.path
        s.delete(gone)
    bad = runner.invoke(cli.app, ["audit", "verify"])
    assert bad.exit_code == 1 and f"lake file {path} has no publication record" in bad.output.replace("\n", "")
