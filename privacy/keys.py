"""The hub's keys: the master secret, keys derived from it, and the Ed25519 signing keys.

The master secret never lives in the repo or a log: it comes from NEURON_MASTER_SECRET
(base64) or from `<state>/keys/master.key`, a 0600 file that `neuron init` creates.
Every other symmetric key is derived from it with HKDF for one purpose, so none is stored.
Signing keys have ids and validity periods; the JWKS lists every key whose signatures may
still be in use, so old public keys outlive their rotation.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from neuron.errors import ConfigError, NotInitialised
from neuron.settings import Settings

HKDF_SALT = b"neuron-hub/v1"
SIGNING_KEY_LIFETIME = timedelta(days=365)


def b64u(data: bytes) -> str:
    """Unpadded base64url, as JOSE uses it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text: str) -> bytes:
    """Inverse of `b64u`."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def derive_key(master: bytes, purpose: str, *context: str, length: int = 32) -> bytes:
    """A key for one purpose (and context, e.g. consumer and epoch) derived by HKDF-SHA256."""
    info = "\x1f".join((purpose, *context)).encode()
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=HKDF_SALT, info=info).derive(master)


def _write_secret(path: Path, data: bytes) -> None:
    """Create a file readable by its owner only; never overwrite an existing key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 key of the hub with its id and validity period."""

    kid: str
    private: Ed25519PrivateKey
    created: datetime
    not_after: datetime

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def public_jwk(self) -> dict[str, Any]:
        raw = self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64u(raw),
            "kid": self.kid,
            "use": "sig",
            "alg": "Ed25519",
            # Not a JWK standard member but widely used: lets a verifier drop expired keys.
            "exp": int(self.not_after.timestamp()),
        }


class HubKeys:
    """The hub's key material, loaded from the state folder (or the environment)."""

    def __init__(self, master_secret: bytes, signing_keys: list[SigningKey]):
        if len(master_secret) < 32:
            raise ConfigError("the master secret must be at least 32 bytes")
        self._master = master_secret
        self.signing_keys = sorted(signing_keys, key=lambda k: k.created)

    def derive(self, purpose: str, *context: str) -> bytes:
        """A 32-byte key for `purpose` (and context) derived from the master secret."""
        return derive_key(self._master, purpose, *context)

    @property
    def active_signing_key(self) -> SigningKey:
        """The newest signing key still valid; what the hub signs with now."""
        now = datetime.now(UTC)
        valid = [k for k in self.signing_keys if k.created <= now < k.not_after]
        if not valid:
            raise NotInitialised("no valid signing key: run `neuron init` or `neuron keys rotate`")
        return valid[-1]

    def jwks(self) -> dict[str, Any]:
        """The public JWKS: every signing key not yet expired."""
        now = datetime.now(UTC)
        return {"keys": [k.public_jwk() for k in self.signing_keys if k.not_after > now]}

    @classmethod
    def load(cls, settings: Settings) -> HubKeys:
        """Load the master secret and signing keys; a clear error if `neuron init` never ran."""
        master = _load_master_secret(settings)
        index_file = settings.keys_dir / "signing" / "index.json"
        if not index_file.exists():
            raise NotInitialised(f"no signing keys under {index_file.parent}: run `neuron init`")
        keys = []
        for entry in json.loads(index_file.read_text()):
            pem = (index_file.parent / f"{entry['kid']}.pem").read_bytes()
            private = serialization.load_pem_private_key(pem, password=None)
            assert isinstance(private, Ed25519PrivateKey)
            keys.append(
                SigningKey(
                    kid=entry["kid"],
                    private=private,
                    created=datetime.fromisoformat(entry["created"]),
                    not_after=datetime.fromisoformat(entry["not_after"]),
                )
            )
        return cls(master, keys)


def _load_master_secret(settings: Settings) -> bytes:
    if settings.master_secret is not None:
        return base64.b64decode(settings.master_secret.get_secret_value())
    path = settings.keys_dir / "master.key"
    if not path.exists():
        raise NotInitialised(f"no master secret at {path} (or NEURON_MASTER_SECRET): run `neuron init`")
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"{path} is readable by others: chmod 600 it")
    return base64.b64decode(path.read_bytes())


def new_signing_key(settings: Settings, now: datetime | None = None) -> SigningKey:
    """Create a signing key, store it 0600 under the state folder and add it to the index."""
    now = now or datetime.now(UTC)
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    kid = f"hub-{now:%Y%m%d}-{hashlib.sha256(raw).hexdigest()[:8]}"
    folder = settings.keys_dir / "signing"
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_secret(folder / f"{kid}.pem", pem)
    index_file = folder / "index.json"
    index = json.loads(index_file.read_text()) if index_file.exists() else []
    key = SigningKey(kid, private, now, now + SIGNING_KEY_LIFETIME)
    index.append({"kid": kid, "created": now.isoformat(), "not_after": key.not_after.isoformat()})
    index_file.write_text(json.dumps(index, indent=2))
    return key


def init_keys(settings: Settings) -> tuple[bool, bool]:
    """Create the master secret and a first signing key where missing.

    Returns which of the two were created; existing keys are never replaced.
    """
    made_master = made_signing = False
    master = settings.keys_dir / "master.key"
    if settings.master_secret is None and not master.exists():
        _write_secret(master, base64.b64encode(os.urandom(32)))
        made_master = True
    if not (settings.keys_dir / "signing" / "index.json").exists():
        new_signing_key(settings)
        made_signing = True
    return made_master, made_signing
