"""`neuron-consumer unseal`: open the values the hub sealed to this consumer (RFC 9180 HPKE).

A sealed value is `nhs2.<key id>.<base64url(enc ‖ ciphertext)>`: mode base,
DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, empty aad, and

    info = UTF-8 "neuron-hub/seal/v2" 0x1f consumer 0x1f feed 0x1f field 0x1f key id

so a value opens only as what it is: this field of this feed, for this consumer.

Values sealed before the hub moved to HPKE (`nhs1.`, its own ECIES) still open here, so
data pulled earlier stays usable (docs/consumers.md, "Migration").
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from neuron_consumer import dataset
from neuron_consumer.errors import ConsumerError, IntegrityError
from neuron_consumer.keys import b64u, b64u_decode

PREFIX = "nhs2."
LEGACY = "nhs1."
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


def seal_info(consumer: str, feed: str, field: str, key_id: str) -> bytes:
    return "\x1f".join(("neuron-hub/seal/v2", consumer, feed, field, key_id)).encode()


def unseal(token: str, key: X25519PrivateKey, consumer: str, feed: str, field: str) -> str:
    """The value sealed in `token`; IntegrityError if it is not one or does not open."""
    if token.startswith(LEGACY):
        return _unseal_v1(token, key, field)
    try:
        prefix, key_id, body = token.split(".", 2)
        blob = b64u_decode(body)
    except ValueError as exc:
        raise IntegrityError(f"a value of {field} is not a sealed value") from exc
    if f"{prefix}." != PREFIX or len(blob) < 48 or b64u(blob) != body:
        raise IntegrityError(f"a value of {field} is not a sealed value")
    try:
        return SUITE.decrypt(blob, key, info=seal_info(consumer, feed, field, key_id)).decode()
    except (InvalidTag, ValueError) as exc:
        raise IntegrityError(f"a sealed value of {field} does not open with this key (another consumer's?)") from exc


def _unseal_v1(token: str, key: X25519PrivateKey, field: str) -> str:
    """The hub's sealing before HPKE: X25519 with an ephemeral key, HKDF-SHA256 (salt: ephemeral
    public ‖ recipient public, info "neuron-hub/seal/v1" 0x1f field), AES-256-GCM with a zero
    nonce (one key per message) and aad "nhs1" 0x1f key id 0x1f field."""
    try:
        _, key_id, body = token.split(".", 2)
        blob = b64u_decode(body)
        if len(blob) < 48 or b64u(blob) != body:
            raise ValueError("not canonical")
        raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
        eph, mine = blob[:32], key.public_key().public_bytes(*raw)
        shared = key.exchange(X25519PublicKey.from_public_bytes(eph))
        info = b"neuron-hub/seal/v1\x1f" + field.encode()
        aes = HKDF(algorithm=hashes.SHA256(), length=32, salt=eph + mine, info=info).derive(shared)
        aad = f"nhs1\x1f{key_id}\x1f{field}".encode()
        return AESGCM(aes).decrypt(b"\x00" * 12, blob[32:], aad).decode()
    except (InvalidTag, ValueError) as exc:
        raise IntegrityError(f"a sealed value of {field} (nhs1) does not open with this key") from exc


def sealed_columns(table: pa.Table) -> list[str]:
    """The string columns whose values are all sealed values."""
    names = []
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_string(column.type) and column.null_count < len(column):
            values = column.drop_null()
            if pc.all(pc.or_(pc.starts_with(values, PREFIX), pc.starts_with(values, LEGACY))).as_py():
                names.append(name)
    return names


def unseal_folder(out: Path, feed: str, key: X25519PrivateKey, to: Path) -> tuple[int, list[str]]:
    """Write the pulled dataset of `feed` to `to` with every sealed column opened; (files, columns)."""
    state = dataset.load_state(out, feed)
    consumer = state.get("consumer")
    if not consumer or not state["versions"]:
        raise ConsumerError(f"{out} holds no pull of {feed}")
    if to.resolve() == (out / feed).resolve():
        raise ConsumerError("write the opened copy elsewhere than the pulled dataset (--to)")
    opened: set[str] = set()
    for key_name in sorted(state["versions"]):
        source = dataset.dataset_path(out, feed, key_name)
        table = pq.read_table(source)
        for name in sealed_columns(table):
            values = table.column(name).to_pylist()
            plain = [None if v is None else unseal(v, key, consumer, feed, name) for v in values]
            table = table.set_column(table.column_names.index(name), name, pa.array(plain, pa.string()))
            opened.add(name)
        dest = to.joinpath(*dataset.segments(key_name), dataset.PART)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, dest)
    return len(state["versions"]), sorted(opened)
