"""The hub's keys: the master secret, keys derived from it, and the Ed25519 signing keys.

The master secret never lives in the repo or a log: it comes from NEURON_MASTER_SECRET
(base64) or from `<state>/keys/master.key`, a 0600 file that `neuron init` creates; it has
versions (privacy/master.py), one active. Every other symmetric key is derived from a
version with HKDF for one purpose, so none is stored. Signing keys have ids and validity
periods; a rotated key stops signing but stays in the JWKS until what it signed expires
(`signature_lifetime_days` after it stopped), so old signatures keep verifying.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kernel.errors import ConfigError, IntegrityError, NotInitialised
from kernel.private import private_dir
from kernel.settings import Settings
from privacy.master import load_master_secrets, write_secret

HKDF_SALT = b"neuron-hub/v1"
SIGNING_KEY_LIFETIME = timedelta(days=365)
# How long a retired signing key stays in the JWKS (issue 17: it was 3650 days). Rotation
# re-signs every partition manifest with the new key (warehouse/manifests.py), so the old key
# is needed only for what is short-lived or already verified: one quarter, the rotation DAG's
# cadence, so the JWKS holds the active key and at most one retired one. docs/security.md.
DEFAULT_SIGNATURE_LIFETIME = timedelta(days=90)
# How often a long-running process looks whether `neuron keys rotate` changed the keys.
RELOAD_SECONDS = 1.0


def b64u(data: bytes) -> str:
    """Unpadded base64url, as JOSE uses it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of an OKP public key: what consumers pin."""
    members = {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}
    return b64u(hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest())


def b64u_decode(text: str) -> bytes:
    """Inverse of `b64u`."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def derive_key(master: bytes, purpose: str, *context: str, length: int = 32, version: int = 1) -> bytes:
    """A key for one purpose (and context, e.g. consumer and epoch) derived by HKDF-SHA256.

    Versions after the first name themselves in the HKDF info too (version 1 keeps the
    original info, so what it protects stays readable).
    """
    parts = (purpose, *context) if version == 1 else (f"master-v{version}", purpose, *context)
    info = "\x1f".join(parts).encode()
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=HKDF_SALT, info=info).derive(master)


_write_secret = write_secret


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 key of the hub with its id and validity period."""

    kid: str
    private: Ed25519PrivateKey
    created: datetime
    not_after: datetime
    retired_at: datetime | None = None  # set by rotation: signs no more from then on

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def signs_until(self) -> datetime:
        """When the key stopped (or stops) signing: its retirement or the end of its validity."""
        return min(self.not_after, self.retired_at) if self.retired_at else self.not_after

    def listed_until(self, signature_lifetime: timedelta) -> datetime:
        """How long the JWKS lists the key: until the last thing it signed has expired."""
        return self.signs_until + signature_lifetime

    def public_jwk(self, signature_lifetime: timedelta = DEFAULT_SIGNATURE_LIFETIME) -> dict[str, Any]:
        raw = self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64u(raw),
            "kid": self.kid,
            "use": "sig",
            "alg": "Ed25519",
            # Not a JWK standard member but widely used: lets a verifier drop expired keys.
            "exp": int(self.listed_until(signature_lifetime).timestamp()),
        }


class HubKeys:
    """The hub's key material, loaded from the state folder (or the environment)."""

    def __init__(
        self,
        master_secret: bytes | dict[int, bytes],
        signing_keys: list[SigningKey],
        active_master: int | None = None,
        signature_lifetime: timedelta = DEFAULT_SIGNATURE_LIFETIME,
    ):
        masters = master_secret if isinstance(master_secret, dict) else {1: master_secret}
        if any(len(secret) < 32 for secret in masters.values()):
            raise ConfigError("the master secret must be at least 32 bytes")
        self._masters = dict(masters)
        self.master_version = active_master or max(masters)
        if self.master_version not in masters:
            raise ConfigError(f"the active master-secret version {self.master_version} is missing")
        self.signing_keys = sorted(signing_keys, key=lambda k: k.created)
        self.signature_lifetime = signature_lifetime
        self._settings: Settings | None = None  # set by `load`: where to reload from
        self._stamp: int | None = None  # the signing index's mtime (ns) when loaded
        self._checked = time.monotonic()

    def _reload_if_rotated(self) -> None:
        """Pick up a rotation made by another process (`neuron keys rotate`, the rotation DAG).

        At most once a second a stat of the signing index; when it changed, the keys are
        loaded again and replace these in place, so every holder (the API's signer and its
        JWKS route) sees the new key without a restart.
        """
        if self._settings is None or time.monotonic() - self._checked < RELOAD_SECONDS:
            return
        self._checked = time.monotonic()
        stamp = _index_stamp(self._settings)
        if stamp == self._stamp:
            return
        fresh = HubKeys.load(self._settings)
        self._masters, self.master_version = fresh._masters, fresh.master_version
        self.signing_keys, self._stamp = fresh.signing_keys, fresh._stamp

    def derive(self, purpose: str, *context: str, version: int | None = None) -> bytes:
        """A 32-byte key for `purpose` (and context) from the active master secret, or `version`."""
        version = version or self.master_version
        if version not in self._masters:
            raise ConfigError(f"master-secret version {version} is not available")
        return derive_key(self._masters[version], purpose, *context, version=version)

    def encrypt_at_rest(self, purpose: str, plaintext: bytes, aad: bytes, *context: str) -> bytes:
        """`plaintext` encrypted for the hub's own storage (the roster, a stored room): the master
        secret's version (2 bytes, so it opens after a rotation), a fresh nonce (12), AES-256-GCM
        under the key derived for `purpose` and `context`."""
        nonce = os.urandom(12)
        version = self.master_version
        key = self.derive(purpose, *context, version=version)
        return version.to_bytes(2, "big") + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)

    def decrypt_at_rest(self, purpose: str, blob: bytes, aad: bytes, *context: str, what: str) -> bytes:
        """The inverse of `encrypt_at_rest`; IntegrityError naming `what` (never its value) if the
        blob was altered or is another hub's."""
        version, nonce, ciphertext = int.from_bytes(blob[:2], "big"), blob[2:14], blob[14:]
        try:
            return AESGCM(self.derive(purpose, *context, version=version)).decrypt(nonce, ciphertext, aad)
        except InvalidTag as exc:
            raise IntegrityError(f"{what} does not decrypt (altered, or another hub's)") from exc

    @property
    def active_signing_key(self) -> SigningKey:
        """The newest signing key still valid and not retired; what the hub signs with now."""
        self._reload_if_rotated()
        now = datetime.now(UTC)
        valid = [k for k in self.signing_keys if k.created <= now < k.signs_until]
        if not valid:
            raise NotInitialised("no valid signing key: run `neuron init` or `neuron keys rotate`")
        return valid[-1]

    def jwks(self) -> dict[str, Any]:
        """The public JWKS: every signing key whose signatures may still be in use."""
        self._reload_if_rotated()
        now = datetime.now(UTC)
        lifetime = self.signature_lifetime
        return {"keys": [k.public_jwk(lifetime) for k in self.signing_keys if k.listed_until(lifetime) > now]}

    @classmethod
    def load(cls, settings: Settings) -> HubKeys:
        """Load the master secrets and signing keys; a clear error if `neuron init` never ran."""
        masters, active = load_master_secrets(settings)
        index_file = settings.keys_dir / "signing" / "index.json"
        if not index_file.exists():
            raise NotInitialised(f"no signing keys under {index_file.parent}: run `neuron init`")
        keys = []
        stamp = _index_stamp(settings)
        for entry in json.loads(index_file.read_text()):
            pem = _read_private(index_file.parent / f"{entry['kid']}.pem")
            private = serialization.load_pem_private_key(pem, password=None)
            assert isinstance(private, Ed25519PrivateKey)
            keys.append(
                SigningKey(
                    kid=entry["kid"],
                    private=private,
                    created=datetime.fromisoformat(entry["created"]),
                    not_after=datetime.fromisoformat(entry["not_after"]),
                    retired_at=datetime.fromisoformat(entry["retired_at"]) if entry.get("retired_at") else None,
                )
            )
        lifetime = timedelta(days=getattr(settings, "signature_lifetime_days", DEFAULT_SIGNATURE_LIFETIME.days))
        loaded = cls(masters, keys, active, lifetime)
        loaded._settings, loaded._stamp = settings, stamp
        return loaded


def _index_stamp(settings: Settings) -> int | None:
    try:
        return (settings.keys_dir / "signing" / "index.json").stat().st_mtime_ns
    except FileNotFoundError:
        return None


def _read_private(path: Path) -> bytes:
    """A private key file's bytes; ConfigError if group or others may read it (issue 17)."""
    mode = path.stat().st_mode
    if mode & 0o077:
        raise ConfigError(f"{path} is readable by group or others (mode {mode & 0o777:o}): chmod 600 it")
    return path.read_bytes()


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
    tmp = index_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(index, indent=2))
    os.chmod(tmp, 0o600)
    os.replace(tmp, index_file)
    return key


def rotate_signing_key(settings: Settings, now: datetime | None = None) -> SigningKey:
    """A new signing key; every older one is retired (signs no more, stays listed in the JWKS)."""
    now = now or datetime.now(UTC)
    key = new_signing_key(settings, now)
    index_file = settings.keys_dir / "signing" / "index.json"
    index = json.loads(index_file.read_text())
    for entry in index:
        if entry["kid"] != key.kid and not entry.get("retired_at"):
            entry["retired_at"] = now.isoformat()
    tmp = index_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(index, indent=2))
    os.chmod(tmp, 0o600)
    os.replace(tmp, index_file)
    return key


def init_keys(settings: Settings) -> tuple[bool, bool]:
    """Create the master secret and a first signing key where missing.

    Returns which of the two were created; existing keys are never replaced.
    """
    made_master = made_signing = False
    private_dir(settings.state_path, restrict=True)  # keys, vault, databases and work files live here
    private_dir(settings.keys_dir, restrict=True)
    master = settings.keys_dir / "master.key"
    if settings.master_secret is None and not master.exists():
        _write_secret(master, base64.b64encode(os.urandom(32)))
        made_master = True
    if not (settings.keys_dir / "signing" / "index.json").exists():
        new_signing_key(settings)
        made_signing = True
    return made_master, made_signing


def raw_public_key(public_key_pem: bytes, kind: type[Any], what: str) -> bytes:
    """The 32 raw bytes of a PEM public key of `kind` (Ed25519 or X25519); ConfigError otherwise."""
    try:
        key = serialization.load_pem_public_key(public_key_pem)
    except ValueError as exc:
        raise ConfigError("not a PEM public key") from exc
    if not isinstance(key, kind):
        raise ConfigError(f"{what} must be {kind.__name__.removesuffix('PublicKey')}")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
