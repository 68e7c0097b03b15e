"""`neuron audit verify` and `neuron audit export`: check the audit log's chain where it is
stored, and write it to a signed archive that anyone can check offline (X-Road's message
log archives are the model).

The archive is a zip of:
  entries.jsonl   one entry per line: its hashed fields, prev_hash and entry_hash
  jwks.json       the hub's public keys
  manifest.json   the range, the chain's first prev_hash and last hash, the log's head at
                  export time, and the SHA-256 of the two files above
  manifest.jws    manifest.json signed by the hub (compact JWS, Ed25519)
  README.txt      how to check it without this software
`verify_archive` checks all of it; given the hub's JWKS as published (pinned), it also
proves the archive came from that hub rather than from whoever holds the file.
"""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api.audit import HEAD_ID
from kernel.errors import IntegrityError
from kernel.settings import Settings
from privacy.jws import canonical_json, sign_json, verify_json
from privacy.keys import HubKeys
from warehouse.audit import links_of, verify_links, verify_session
from warehouse.audit_chain import GENESIS_HASH, AuditReport, Link, check_end
from warehouse.control import session_scope
from warehouse.models import AuditEntry, AuditHead

FORMAT = "neuron-audit-archive/1"
README = """Neuron Hub audit archive ({community}).

entries.jsonl holds one audit entry per line. Each entry's entry_hash is
  sha256( prev_hash (hex, as ASCII) || canonical JSON of the entry without prev_hash and entry_hash )
where canonical JSON has sorted keys, no spaces, UTF-8. Each entry's prev_hash is the entry_hash
of the entry before it (the first one's is manifest.json's first_prev_hash), so no entry can be
edited, removed or moved without breaking the chain. manifest.json gives the SHA-256 of
entries.jsonl and jwks.json and the chain's last hash; manifest.jws is manifest.json signed
(JWS, Ed25519) by the hub's key named in its header, published in jwks.json and at the hub's
/.well-known/jwks.json. Check it with Neuron Hub (`neuron audit`), or by hand as above with any
JWS library and the hub's keys as published.
"""


@dataclass(frozen=True)
class ArchiveInfo:
    """What an export wrote."""

    path: Path
    entries: int
    first_seq: int
    last_seq: int
    last_hash: str


def verify_audit(settings: Settings) -> AuditReport:
    """Check the control database's audit log: which entries were edited, deleted or reordered."""
    with session_scope(settings.control_url) as session:
        return verify_session(session)


# The overview's chain check, per control database: (head seq, head hash, checked at, report).
_CHECKED: dict[str, tuple[int, str, float, AuditReport]] = {}
CHECK_AGAIN_SECONDS = 300.0


def cached_verify_audit(settings: Settings) -> AuditReport:
    """`verify_audit` for the console's overview (issue 17): the whole chain is hashed again
    only when its head moved or five minutes passed, not on every view. The audit page and
    `neuron audit verify` always check it whole."""
    with session_scope(settings.control_url) as session:
        head = session.get(AuditHead, HEAD_ID)
        seq, last = (head.last_seq, head.last_hash) if head else (0, GENESIS_HASH)
    cached = _CHECKED.get(settings.control_url)
    now = time.monotonic()
    if cached is not None and cached[:2] == (seq, last) and now - cached[2] < CHECK_AGAIN_SECONDS:
        return cached[3]
    report = verify_audit(settings)
    _CHECKED[settings.control_url] = (seq, last, now, report)
    return report


def export_audit(settings: Settings, path: Path, first_seq: int = 1, until_seq: int | None = None) -> ArchiveInfo:
    """Write entries `first_seq`..`until_seq` (default: all) to a signed archive at `path`.

    The entries are streamed into the zip as the database yields them (issue 17): memory does
    not grow with the log; the manifest, which needs their digest and count, follows them.
    """
    keys = HubKeys.load(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    digest, count, last = hashlib.sha256(), 0, None
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with session_scope(settings.control_url) as session, archive.open("entries.jsonl", "w") as out:
            head = session.get(AuditHead, HEAD_ID)
            log_head = {"seq": head.last_seq, "hash": head.last_hash} if head else None
            before = session.get(AuditEntry, first_seq - 1) if first_seq > 1 else None
            start_hash = before.entry_hash if before else GENESIS_HASH
            for link in links_of(session, first_seq, until_seq):
                line = canonical_json({**link.fields, "prev_hash": link.prev_hash, "entry_hash": link.entry_hash})
                out.write(line + b"\n")
                digest.update(line + b"\n")
                count, last = count + 1, (int(link.fields["seq"]), link.entry_hash)
        last_seq, last_hash = last if last else (first_seq - 1, start_hash)
        jwks = canonical_json(keys.jwks())
        manifest = {
            "format": FORMAT,
            "community_id": settings.community_id,
            "exported_at": datetime.now(UTC).isoformat(),
            "entries": count,
            "first_seq": first_seq,
            "last_seq": last_seq,
            "first_prev_hash": start_hash,
            "last_hash": last_hash,
            "log_head": log_head,
            "entries_sha256": digest.hexdigest(),
            "jwks_sha256": hashlib.sha256(jwks).hexdigest(),
        }
        archive.writestr("jwks.json", jwks)
        archive.writestr("manifest.json", canonical_json(manifest))
        archive.writestr("manifest.jws", sign_json(manifest, keys.active_signing_key))
        archive.writestr("README.txt", README.format(community=settings.community_name))
    tmp.replace(path)
    return ArchiveInfo(path, count, first_seq, last_seq, last_hash)


def verify_archive(path: Path, jwks: dict[str, Any] | None = None) -> AuditReport:
    """Check an archive offline: its signature (against `jwks`, the hub's pinned keys, or else
    the archive's own), its files' digests and the chain of its entries; IntegrityError if the
    archive itself is not what it claims, a report naming any broken entries otherwise."""
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in ("entries.jsonl", "jwks.json", "manifest.jws")}
    keys = jwks if jwks is not None else json.loads(files["jwks.json"])
    manifest = verify_json(files["manifest.jws"].decode(), keys)
    if manifest.get("format") != FORMAT:
        raise IntegrityError(f"{path.name} is not a Neuron Hub audit archive")
    if hashlib.sha256(files["jwks.json"]).hexdigest() != manifest["jwks_sha256"]:
        raise IntegrityError(f"{path.name}: jwks.json is not the file the hub signed")

    def links() -> Iterator[Link]:
        for line in files["entries.jsonl"].splitlines():
            entry = json.loads(line)
            yield Link({k: v for k, v in entry.items() if k not in {"prev_hash", "entry_hash"}}, **_hashes(entry))

    report, last_hash = verify_links(links(), manifest["first_prev_hash"], manifest["first_seq"], links)
    check_end(report, last_hash, manifest["last_seq"], manifest["last_hash"])
    if hashlib.sha256(files["entries.jsonl"]).hexdigest() != manifest["entries_sha256"]:
        # Still a report: the chain above says which entries, this says the file was touched.
        report.problems.insert(0, "entries.jsonl is not the file the hub signed")
    return report


def _hashes(entry: dict[str, Any]) -> dict[str, str]:
    return {"prev_hash": str(entry["prev_hash"]), "entry_hash": str(entry["entry_hash"])}
