"""Sealing a value to a consumer's X25519 public key (ECIES: X25519 + HKDF-SHA256 + AES-256-GCM).

Entitled re-identification without a lookup table: only the consumer's private key opens
a sealed value, and the hub keeps nothing that maps tokens back to people.

Sealing is deterministic on purpose: the ephemeral key is derived from a hub key, the
recipient's key id and the value, so a re-run of the same batch gives the same bytes
(the publisher's "same input, same partition" rule). What that reveals is only that two
sealed values are equal, which the recipient, who can open them, learns anyway. Each
ephemeral key yields its own AES key used for one plaintext only, so the fixed nonce is
never reused with a different message.

Format: `nhs1.<key id>.<base64url(ephemeral public key ‖ ciphertext+tag)>`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kernel.errors import IntegrityError
from privacy.keys import b64u, b64u_decode

PREFIX = "nhs1"
NONCE = b"\x00" * 12  # safe: every AES key seals exactly one plaintext (see the module doc)


@dataclass(frozen=True)
class Recipient:
    """A consumer's encryption key: what values are sealed to."""

    consumer: str
    key_id: str
    public_key: X25519PublicKey

    @property
    def raw(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _aes_key(shared: bytes, ephemeral: bytes, recipient: bytes, context: str) -> bytes:
    info = b"neuron-hub/seal/v1\x1f" + context.encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=info).derive(shared)


def _aad(key_id: str, context: str) -> bytes:
    # Binds the ciphertext to its recipient key and kind: a sealed plate cannot pass as a phone.
    return f"{PREFIX}\x1f{key_id}\x1f{context}".encode()


def seal(value: str, recipient: Recipient, hub_key: bytes, context: str) -> str:
    """`value` sealed to `recipient`; `context` names what it is (e.g. the identifier kind)."""
    seed = hmac.digest(hub_key, f"{recipient.key_id}\x1f{context}\x1f{value}".encode(), "sha256")
    ephemeral = X25519PrivateKey.from_private_bytes(seed)
    eph_raw = ephemeral.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key = _aes_key(ephemeral.exchange(recipient.public_key), eph_raw, recipient.raw, context)
    ciphertext = AESGCM(key).encrypt(NONCE, value.encode(), _aad(recipient.key_id, context))
    return f"{PREFIX}.{recipient.key_id}.{b64u(eph_raw + ciphertext)}"


def seal_column(column: pa.Array | pa.ChunkedArray, recipient: Recipient, hub_key: bytes, context: str) -> pa.Array:
    """Seal every value of a string column (once per distinct value); nulls stay null."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = pc.dictionary_encode(column.cast(pa.string()))
    sealed = [None if v is None else seal(v, recipient, hub_key, context) for v in encoded.dictionary.to_pylist()]
    return pc.take(pa.array(sealed, pa.string()), encoded.indices)


def sealed_key_id(token: str) -> str:
    """The id of the key a sealed value was sealed to."""
    prefix, key_id, _ = token.split(".", 2)
    if prefix != PREFIX:
        raise IntegrityError("not a sealed value")
    return key_id


def open_sealed(token: str, private_key: X25519PrivateKey, context: str) -> str:
    """Open a sealed value with the consumer's private key; IntegrityError if it does not open."""
    try:
        prefix, key_id, body = token.split(".", 2)
        blob = b64u_decode(body)
    except ValueError as exc:
        raise IntegrityError("not a sealed value") from exc
    # Only the canonical encoding: otherwise unused bits of the last character make one value many strings.
    if prefix != PREFIX or len(blob) < 32 + 16 or b64u(blob) != body:
        raise IntegrityError("not a sealed value")
    eph_raw, ciphertext = blob[:32], blob[32:]
    mine = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        shared = private_key.exchange(X25519PublicKey.from_public_bytes(eph_raw))
        plain = AESGCM(_aes_key(shared, eph_raw, mine, context)).decrypt(NONCE, ciphertext, _aad(key_id, context))
    except (InvalidTag, ValueError) as exc:  # ValueError: a low-order ephemeral point
        raise IntegrityError("sealed value does not open with this key") from exc
    return plain.decode()
