"""The raw vault: each extracted batch, exactly as the source sent it, encrypted at rest.

It is the replay source (a re-run re-reads the vault instead of the vendor) and the
only place a raw direct identifier is kept, for a short retention. Envelope encryption:
every object has its own random data key (AES-256-GCM); the data key is wrapped by a
key-encryption key derived from the master secret. The object id is authenticated
data, so a file cannot be swapped for another batch's.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kernel.errors import IntegrityError
from privacy.keys import HubKeys, b64u, b64u_decode

MAGIC = b"NEURONVAULT1\n"


@dataclass(frozen=True)
class VaultObject:
    """Where a landed batch lives and when it must be gone."""

    object_id: str
    path: Path
    expires_at: datetime


def _object_path(vault_dir: Path, object_id: str) -> Path:
    return vault_dir / f"{object_id.replace(':', '_').replace('/', '_')}.vault"


def _table_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def land(
    vault_dir: Path,
    keys: HubKeys,
    object_id: str,
    table: pa.Table,
    retention: timedelta | None = None,
    expires_at: datetime | None = None,
) -> VaultObject:
    """Encrypt and write a raw batch (atomically; a re-run replaces the object).

    It expires `retention` from now, or at `expires_at` (a rewrite keeps the original expiry).
    """
    if expires_at is None:
        if retention is None:
            raise ValueError("give a retention or an expiry")
        expires_at = datetime.now(UTC) + retention
    kek = AESGCM(keys.derive("vault-kek"))
    data_key = AESGCM.generate_key(bit_length=256)
    key_nonce, data_nonce = os.urandom(12), os.urandom(12)
    aad = object_id.encode()
    header = {
        "object_id": object_id,
        "master_version": keys.master_version,  # the key-encryption key's master secret
        "wrapped_key": b64u(kek.encrypt(key_nonce, data_key, aad)),
        "key_nonce": b64u(key_nonce),
        "nonce": b64u(data_nonce),
        "expires_at": expires_at.isoformat(),
        "rows": table.num_rows,
    }
    ciphertext = AESGCM(data_key).encrypt(data_nonce, _table_bytes(table), aad)
    path = _object_path(vault_dir, object_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(MAGIC + json.dumps(header).encode() + b"\n" + ciphertext)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return VaultObject(object_id, path, expires_at)


def header(vault_dir: Path, object_id: str) -> VaultObject | None:
    """Where an object lives and when it expires, without decrypting it (None if gone)."""
    path = _object_path(vault_dir, object_id)
    if not path.exists():
        return None
    with open(path, "rb") as f:
        f.readline()
        fields = json.loads(f.readline())
    return VaultObject(object_id, path, datetime.fromisoformat(fields["expires_at"]))


def read(vault_dir: Path, keys: HubKeys, object_id: str) -> pa.Table:
    """Decrypt a landed batch; IntegrityError if it was altered or belongs to another id."""
    path = _object_path(vault_dir, object_id)
    blob = path.read_bytes()
    if not blob.startswith(MAGIC):
        raise IntegrityError(f"vault object {object_id}: not a vault file")
    header_line, _, ciphertext = blob[len(MAGIC) :].partition(b"\n")
    header = json.loads(header_line)
    aad = object_id.encode()
    try:
        kek = AESGCM(keys.derive("vault-kek", version=header.get("master_version", 1)))
        data_key = kek.decrypt(b64u_decode(header["key_nonce"]), b64u_decode(header["wrapped_key"]), aad)
        plain = AESGCM(data_key).decrypt(b64u_decode(header["nonce"]), ciphertext, aad)
    except InvalidTag as exc:
        raise IntegrityError(f"vault object {object_id}: authentication failed") from exc
    return pa.ipc.open_stream(plain).read_all()


def purge_expired(vault_dir: Path, now: datetime | None = None) -> list[str]:
    """Delete every object past its retention; returns the purged object ids."""
    now = now or datetime.now(UTC)
    purged = []
    for path in sorted(vault_dir.glob("*.vault")):
        with open(path, "rb") as f:
            f.readline()
            header = json.loads(f.readline())
        if datetime.fromisoformat(header["expires_at"]) <= now:
            path.unlink()
            purged.append(header["object_id"])
    return purged
