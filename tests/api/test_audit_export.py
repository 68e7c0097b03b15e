"""`verify_audit` (neuron audit verify) names the entries that were edited, deleted or
reordered, on SQLite and PostgreSQL; `export_audit` writes an archive that `verify_archive`
checks offline, against the hub's pinned keys."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from api.audit import entry_hash
from api.audit_export import export_audit, verify_archive, verify_audit
from kernel.errors import IntegrityError
from kernel.settings import Settings
from privacy.jws import sign_json
from privacy.keys import HubKeys, init_keys
from tests.api.hub import hub_settings
from tests.api.test_audit import append_requests
from warehouse.control import session_scope
from warehouse.migrations import migrate
from warehouse.models import AuditEntry


@pytest.fixture
def audited(control_url: str, tmp_path: Path) -> Settings:
    """A hub with keys and five audit entries, in SQLite and (where it runs) PostgreSQL."""
    settings = hub_settings(tmp_path / "hub", control_url)
    init_keys(settings)
    migrate(control_url)
    append_requests(control_url, 5)
    return settings


def _edit(session: Session) -> None:
    session.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(rows=999))


def _edit_and_rehash(session: Session) -> None:
    entry = session.get(AuditEntry, 3)
    assert entry is not None
    entry.actor = "someone_else"
    entry.entry_hash = entry_hash(entry.prev_hash, entry)


def _delete(session: Session) -> None:
    session.execute(delete(AuditEntry).where(AuditEntry.seq == 3))


def _delete_and_renumber(session: Session) -> None:
    session.execute(delete(AuditEntry).where(AuditEntry.seq == 3))
    for seq in (4, 5):
        session.execute(update(AuditEntry).where(AuditEntry.seq == seq).values(seq=seq - 1))


def _delete_tail(session: Session) -> None:
    session.execute(delete(AuditEntry).where(AuditEntry.seq == 5))


def _reorder(session: Session) -> None:
    for old, new in ((2, -2), (3, 2), (-2, 3)):
        session.execute(update(AuditEntry).where(AuditEntry.seq == old).values(seq=new))


@pytest.mark.parametrize(
    ("tamper", "edited", "deleted", "reordered"),
    [
        (_edit, [3], [], []),
        (_edit_and_rehash, [3], [], []),
        (_delete, [], [3], []),
        (_delete_and_renumber, [], [3], [(3, 4), (4, 5)]),
        (_delete_tail, [], [5], []),
        (_reorder, [], [], [(3, 2), (2, 3)]),
    ],
    ids=["edited", "edited-and-rehashed", "deleted", "deleted-and-renumbered", "tail-cut", "reordered"],
)
def test_verify_names_what_was_done(
    audited: Settings,
    tamper: Callable[[Session], None],
    edited: list[int],
    deleted: list[int],
    reordered: list[tuple[int, int]],
) -> None:
    assert verify_audit(audited).ok
    with session_scope(audited.control_url) as session:
        tamper(session)
    report = verify_audit(audited)
    assert not report.ok
    assert (report.edited, report.deleted, report.reordered) == (edited, deleted, reordered), report.problems


def test_archive_verifies_offline_against_the_pinned_keys(audited: Settings, tmp_path: Path) -> None:
    info = export_audit(audited, tmp_path / "audit.zip")
    assert (info.entries, info.first_seq, info.last_seq) == (5, 1, 5)
    pinned = HubKeys.load(audited).jwks()
    report = verify_archive(info.path, pinned)
    assert report.ok and report.entries == 5 and report.last_seq == 5
    with zipfile.ZipFile(info.path) as archive:
        assert sorted(archive.namelist()) == [
            "README.txt",
            "entries.jsonl",
            "jwks.json",
            "manifest.json",
            "manifest.jws",
        ]
    # A range carries the hash it continues from.
    part = export_audit(audited, tmp_path / "part.zip", first_seq=3, until_seq=4)
    assert verify_archive(part.path, pinned).ok


def _rewrite(path: Path, name: str, change: Callable[[bytes], bytes]) -> None:
    with zipfile.ZipFile(path) as archive:
        files = {n: archive.read(n) for n in archive.namelist()}
    files[name] = change(files[name])
    with zipfile.ZipFile(path, "w") as archive:
        for n, data in files.items():
            archive.writestr(n, data)


def test_an_edited_archive_names_the_entry(audited: Settings, tmp_path: Path) -> None:
    path = export_audit(audited, tmp_path / "audit.zip").path

    def edit_third(data: bytes) -> bytes:
        lines = data.splitlines()
        entry = json.loads(lines[2])
        entry["rows"] = 12345
        lines[2] = json.dumps(entry).encode()
        return b"\n".join(lines) + b"\n"

    _rewrite(path, "entries.jsonl", edit_third)
    report = verify_archive(path, HubKeys.load(audited).jwks())
    assert report.edited == [3]
    assert report.problems[0] == "entries.jsonl is not the file the hub signed"


def test_an_archive_signed_by_another_key_is_refused(audited: Settings, tmp_path: Path) -> None:
    path = export_audit(audited, tmp_path / "audit.zip").path
    genuine = HubKeys.load(audited)
    impostor = replace(genuine.active_signing_key, private=Ed25519PrivateKey.generate())  # same kid, other key
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    manifest["last_seq"] = 4  # hide the last entry, and re-sign with a key of one's own
    _rewrite(path, "manifest.jws", lambda _: sign_json(manifest, impostor).encode())
    with pytest.raises(IntegrityError):
        verify_archive(path, genuine.jwks())
