"""What the audit log costs the console (issue 17): the overview does not hash the whole
chain again on every view, and the archive is streamed, never held whole in memory."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

import api.audit_export
from api.audit_export import cached_verify_audit, export_audit, verify_archive
from kernel.settings import Settings
from privacy.keys import init_keys
from tests.api.hub import hub_settings
from tests.api.test_audit import append_requests
from warehouse.migrations import migrate


@pytest.fixture
def audited(tmp_path: Path) -> Settings:
    settings = hub_settings(tmp_path / "hub")
    init_keys(settings)
    migrate(settings.control_url)
    append_requests(settings.control_url, 5)
    return settings


def test_the_overview_checks_the_chain_again_only_when_its_head_moved(
    audited: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[int] = []
    whole = api.audit_export.verify_audit

    def counted(settings: Settings) -> Any:
        checks.append(1)
        return whole(settings)

    monkeypatch.setattr(api.audit_export, "verify_audit", counted)
    first = cached_verify_audit(audited)
    assert cached_verify_audit(audited) == first and len(checks) == 1
    append_requests(audited.control_url, 1)
    assert cached_verify_audit(audited).entries == first.entries + 1 and len(checks) == 2


def test_the_archive_streams_its_entries(audited: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writestr = zipfile.ZipFile.writestr

    def small_only(self: zipfile.ZipFile, name: Any, data: Any, *args: Any, **kwargs: Any) -> None:
        # Only the small files may be written from one in-memory value; entries must stream.
        assert str(getattr(name, "filename", name)) != "entries.jsonl", "entries built in memory"
        writestr(self, name, data, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", small_only)
    info = export_audit(audited, tmp_path / "audit.zip")
    assert info.entries == 5
    assert verify_archive(info.path).ok
