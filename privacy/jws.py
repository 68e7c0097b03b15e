"""Compact JWS signatures (Ed25519) over canonical JSON: manifests and relay messages."""

from __future__ import annotations

import json
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OKPKey

from kernel.errors import IntegrityError
from privacy.keys import SigningKey

# RFC 9864 deprecates the polymorphic "EdDSA" in favour of the fully specified "Ed25519".
ALGORITHM = "Ed25519"


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _okp(key: SigningKey) -> OKPKey:
    from cryptography.hazmat.primitives import serialization

    pem = key.private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return OKPKey.import_key(pem, parameters={"kid": key.kid})


def sign_json(payload: dict[str, Any], key: SigningKey) -> str:
    """Sign a JSON object; returns the compact JWS."""
    header = {"alg": ALGORITHM, "kid": key.kid, "typ": "JWT" if "exp" in payload else "JOSE"}
    return jws.serialize_compact(header, canonical_json(payload), _okp(key), algorithms=[ALGORITHM])


def verify_json(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """Verify a compact JWS against a JWKS and return its payload; raise IntegrityError otherwise."""
    try:
        keyset = KeySet.import_key_set({"keys": [_public_only(k) for k in jwks.get("keys", [])]})
        obj = jws.deserialize_compact(token, keyset, algorithms=[ALGORITHM])
        payload = json.loads(obj.payload)
    except (JoseError, ValueError, KeyError) as exc:
        raise IntegrityError(f"signature does not verify: {type(exc).__name__}") from exc
    if not isinstance(payload, dict):
        raise IntegrityError("signed payload is not a JSON object")
    return payload


def _public_only(jwk: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in jwk.items() if k in {"kty", "crv", "x", "kid", "use", "alg"}}
