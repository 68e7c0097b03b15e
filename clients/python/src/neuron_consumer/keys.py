"""The hub's keys: JWKS pinned by RFC 7638 thumbprints, and compact JWS (Ed25519) verification.

Nothing is trusted on first use: the JWKS the hub serves is used only for the keys whose
thumbprint the consumer pinned (given out of band, e.g. with the hub's registration
letter), and the JWKS response itself must verify with one of those keys.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from neuron_consumer.errors import ConsumerError, IntegrityError

JWS_ALGORITHMS = {"Ed25519", "EdDSA"}  # RFC 9864 names it Ed25519; EdDSA is the older, polymorphic name


def b64u(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text: str) -> bytes:
    """Inverse of b64u; ValueError on anything else."""
    if not all(c.isalnum() or c in "-_" for c in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of an OKP key: its pin."""
    if jwk.get("kty") != "OKP":
        raise ValueError("not an OKP key")
    members = {"crv": jwk["crv"], "kty": "OKP", "x": jwk["x"]}
    return b64u(hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest())


def pinned_keys(jwks: Any, pins: set[str]) -> dict[str, Ed25519PublicKey]:
    """The JWKS's Ed25519 keys whose thumbprint is pinned, by key id (all others are ignored)."""
    keys: dict[str, Ed25519PublicKey] = {}
    entries = jwks.get("keys") if isinstance(jwks, dict) else None
    for jwk in entries if isinstance(entries, list) else []:
        if not (isinstance(jwk, dict) and jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519"):
            continue
        try:
            if thumbprint(jwk) in pins:
                keys[str(jwk["kid"])] = Ed25519PublicKey.from_public_bytes(b64u_decode(str(jwk["x"])))
        except (KeyError, ValueError):
            continue
    if not keys:
        raise IntegrityError(
            "none of the hub's keys matches a pinned thumbprint: check --pin against the hub's letter"
            " (neuron keys show); a rotated key needs its new thumbprint pinned"
        )
    return keys


def verify_jws(token: str, keys: dict[str, Ed25519PublicKey]) -> dict[str, Any]:
    """The payload of a compact JWS signed by one of `keys`; IntegrityError otherwise."""
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = json.loads(b64u_decode(header_b64))
        key = keys[str(header["kid"])]
        if header.get("alg") not in JWS_ALGORITHMS or "crit" in header:
            raise ValueError("unexpected algorithm")
        key.verify(b64u_decode(signature_b64), f"{header_b64}.{payload_b64}".encode("ascii"))
        payload = json.loads(b64u_decode(payload_b64))
    except (ValueError, KeyError, TypeError, InvalidSignature, UnicodeError) as exc:
        raise IntegrityError(f"a signed manifest does not verify ({type(exc).__name__})") from exc
    if not isinstance(payload, dict):
        raise IntegrityError("a signed manifest is not a JSON object")
    return payload


def _load_private(path: Path) -> object:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConsumerError(f"cannot read the key file {path}: {exc.strerror}") from exc
    try:
        return load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConsumerError(f"{path} is not an unencrypted PEM private key") from exc


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The consumer's Ed25519 request-signing key (PEM, PKCS#8)."""
    key = _load_private(path)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConsumerError(f"{path} is not an Ed25519 private key (the key you sign requests with)")
    return key


def load_sealing_key(path: Path) -> X25519PrivateKey:
    """The consumer's X25519 private key that opens sealed fields (PEM, PKCS#8)."""
    key = _load_private(path)
    if not isinstance(key, X25519PrivateKey):
        raise ConsumerError(f"{path} is not an X25519 private key (the key sealed fields are opened with)")
    return key
