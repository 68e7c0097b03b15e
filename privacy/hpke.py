"""RFC 9180 HPKE, mode base, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, single-shot seal.

Why our own sender side: `cryptography`'s HPKE (`hpke.Suite.encrypt`, 50.x) always draws a
random ephemeral key, and publishing must be deterministic (the same value sealed again
gives the same bytes, so a re-run publishes byte-identical partitions). RFC 9180 §7.1.3
defines DeriveKeyPair(ikm) exactly for this; here the sender's ikm is chosen by the caller
(privacy.seal derives it from a keyed HMAC of the value). Everything else is the RFC's
text, step by step: Encap (§4.1), KeySchedule (§5.1) and a single Seal at sequence 0
(§5.2). The receiving side is `cryptography`'s own `Suite.decrypt` (privacy.seal.open_sealed
and the consumer kit use it), so the two sides are independent implementations; tests pin
this module to the RFC's appendix A.1/A.2 vectors as well.

The output is `enc ‖ ciphertext`, the layout `Suite.encrypt`/`Suite.decrypt` use.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

KEM_X25519_HKDF_SHA256 = 0x0020
KDF_HKDF_SHA256 = 0x0001
AEAD_AES_128_GCM = 0x0001
AEAD_AES_256_GCM = 0x0002
AEAD_CHACHA20_POLY1305 = 0x0003
_AEADS: dict[int, tuple[int, type[AESGCM] | type[ChaCha20Poly1305]]] = {
    AEAD_AES_128_GCM: (16, AESGCM),
    AEAD_AES_256_GCM: (32, AESGCM),
    AEAD_CHACHA20_POLY1305: (32, ChaCha20Poly1305),
}
NN = 12  # nonce length of all three AEADs
NH = 32  # HKDF-SHA256 output
MODE_BASE = 0x00
KEM_SUITE_ID = b"KEM" + KEM_X25519_HKDF_SHA256.to_bytes(2, "big")


def _extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.digest(salt or b"\x00" * NH, ikm, "sha256")


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), "sha256")
        out += block
        counter += 1
    return out[:length]


def labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    """RFC 9180 §4: LabeledExtract."""
    return _extract(salt, b"HPKE-v1" + suite_id + label + ikm)


def labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    """RFC 9180 §4: LabeledExpand."""
    return _expand(prk, length.to_bytes(2, "big") + b"HPKE-v1" + suite_id + label + info, length)


def suite_id(aead: int) -> bytes:
    """The HPKE suite id of DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and `aead`."""
    return b"HPKE" + b"".join(x.to_bytes(2, "big") for x in (KEM_X25519_HKDF_SHA256, KDF_HKDF_SHA256, aead))


def _raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def derive_key_pair(ikm: bytes) -> X25519PrivateKey:
    """RFC 9180 §7.1.3 DeriveKeyPair for X25519 (the private key; X25519 clamps at use)."""
    dkp_prk = labeled_extract(KEM_SUITE_ID, b"", b"dkp_prk", ikm)
    return X25519PrivateKey.from_private_bytes(labeled_expand(KEM_SUITE_ID, dkp_prk, b"sk", b"", 32))


def encap(recipient: X25519PublicKey, ikm_e: bytes) -> tuple[bytes, bytes]:
    """RFC 9180 §4.1 Encap with the ephemeral key DeriveKeyPair(ikm_e): (shared_secret, enc)."""
    ephemeral = derive_key_pair(ikm_e)
    enc = _raw(ephemeral.public_key())
    dh = ephemeral.exchange(recipient)  # ValueError on an all-zero result (a low-order point)
    kem_context = enc + _raw(recipient)
    eae_prk = labeled_extract(KEM_SUITE_ID, b"", b"eae_prk", dh)
    return labeled_expand(KEM_SUITE_ID, eae_prk, b"shared_secret", kem_context, 32), enc


@lru_cache(maxsize=1024)
def _context(aead: int, info: bytes) -> bytes:
    # The same for every value of a column (one info per consumer, feed and field).
    sid = suite_id(aead)
    psk_id_hash = labeled_extract(sid, b"", b"psk_id_hash", b"")
    return bytes([MODE_BASE]) + psk_id_hash + labeled_extract(sid, b"", b"info_hash", info)


def key_schedule(shared_secret: bytes, info: bytes, aead: int) -> tuple[bytes, bytes, bytes]:
    """RFC 9180 §5.1 KeySchedule, mode base (no PSK): (key, base_nonce, exporter_secret)."""
    sid = suite_id(aead)
    context = _context(aead, info)
    secret = labeled_extract(sid, shared_secret, b"secret", b"")
    nk = _AEADS[aead][0]
    key = labeled_expand(sid, secret, b"key", context, nk)
    base_nonce = labeled_expand(sid, secret, b"base_nonce", context, NN)
    return key, base_nonce, labeled_expand(sid, secret, b"exp", context, NH)


def seal_base(
    recipient: X25519PublicKey, info: bytes, aad: bytes, plaintext: bytes, ikm_e: bytes, aead: int = AEAD_AES_256_GCM
) -> bytes:
    """RFC 9180 §6.1 single-shot SealBase with the ephemeral key derived from `ikm_e`: enc ‖ ct.

    One message per context, so the nonce is base_nonce XOR 0 (sequence 0, §5.2).
    """
    shared, enc = encap(recipient, ikm_e)
    key, base_nonce, _ = key_schedule(shared, info, aead)
    return enc + _AEADS[aead][1](key).encrypt(base_nonce, plaintext, aad)


def ikm_for(key: bytes, message: bytes) -> bytes:
    """A keyed, per-message ikm for DeriveKeyPair: HMAC-SHA256(key, message) (Nsk = 32 bytes)."""
    return hmac.new(key, message, hashlib.sha256).digest()
