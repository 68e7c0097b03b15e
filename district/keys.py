"""The district's own Ed25519 keys: one signs its requests to the hubs (its public half is
registered at each hub with `neuron consumers add district --public-key …`), one signs the
receipts it hands back. Written once, mode 0600, never sent anywhere."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from district.config import DistrictSettings
from kernel.errors import ConfigError, NotInitialised
from privacy.keys import b64u


def _raw(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(consumer: str, private: Ed25519PrivateKey) -> str:
    """The key id a hub gives this key (api.consumers.key_id_for: name and 8 hex digits of its SHA-256)."""
    return f"{consumer}-{hashlib.sha256(_raw(private)).hexdigest()[:8]}"


def receipt_kid(private: Ed25519PrivateKey, district: str) -> str:
    return f"{district}-receipts-{hashlib.sha256(_raw(private)).hexdigest()[:8]}"


def public_pem(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_key(path: Path) -> bool:
    """Create an Ed25519 key at `path` (0600) unless one is there; True if created."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return True


def load_key(path: Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM file; NotInitialised when absent."""
    if not path.exists():
        raise NotInitialised(f"no key at {path}; run `neuron district init`")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 private key")
    return key


def init_keys(settings: DistrictSettings) -> list[Path]:
    """Create the district's request key and receipt key where missing; the paths created."""
    created = []
    for path in (settings.resolve(settings.key_file), settings.resolve(settings.receipt_key_file)):
        if write_key(path):
            created.append(path)
    return created


def receipts_jwks(settings: DistrictSettings) -> dict[str, Any]:
    """The JWKS a community's console pins to check the district's receipts."""
    private = load_key(settings.resolve(settings.receipt_key_file))
    kid = receipt_kid(private, settings.name)
    return {
        "keys": [{"kty": "OKP", "crv": "Ed25519", "x": b64u(_raw(private)), "kid": kid, "use": "sig", "alg": "Ed25519"}]
    }
