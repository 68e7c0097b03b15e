"""HTTP Digest on the client's side (RFC 7616, RFC 2617's MD5 with qop=auth), for Register/UnRegister.

Upper platforms make nonces single-use with a short life, so every request answers its own
fresh challenge: the lower never reuses a nonce with nc+1 (a server that allowed it would be
the exception), and a 401 with `stale=true` means "same credentials, new nonce": answered once
more at once. A 401 without it means the credentials were refused.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class Challenge:
    realm: str
    nonce: str
    qop: str | None
    opaque: str | None
    algorithm: str
    stale: bool


def parse_challenge(header: str | None) -> Challenge | None:
    """The Digest challenge of a WWW-Authenticate header, or None if it offers none we can answer."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _PARAM.finditer(rest)}
    if "nonce" not in params or "realm" not in params:
        return None
    qops = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
    algorithm = params.get("algorithm", "MD5")
    if algorithm.upper() not in ("MD5", "SHA-256") or (qops and "auth" not in qops):
        return None
    return Challenge(
        realm=params["realm"],
        nonce=params["nonce"],
        qop="auth" if qops else None,
        opaque=params.get("opaque"),
        algorithm=algorithm,
        stale=params.get("stale", "").lower() == "true",
    )


def _hash(algorithm: str, text: str) -> str:
    if algorithm.upper() == "SHA-256":
        return hashlib.sha256(text.encode()).hexdigest()
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def authorization(challenge: Challenge, method: str, uri: str, username: str, password: str, nc: int = 1) -> str:
    """The Authorization header answering `challenge` for one request."""
    algo = challenge.algorithm
    ha1 = _hash(algo, f"{username}:{challenge.realm}:{password}")
    ha2 = _hash(algo, f"{method}:{uri}")
    parts = [f'username="{username}"', f'realm="{challenge.realm}"', f'nonce="{challenge.nonce}"', f'uri="{uri}"']
    if challenge.qop:
        cnonce, count = secrets.token_hex(8), f"{nc:08x}"
        response = _hash(algo, f"{ha1}:{challenge.nonce}:{count}:{cnonce}:auth:{ha2}")
        parts += ["qop=auth", f"nc={count}", f'cnonce="{cnonce}"']
    else:  # RFC 2069 compatibility: a server that offers no qop
        response = _hash(algo, f"{ha1}:{challenge.nonce}:{ha2}")
    parts.append(f'response="{response}"')
    if challenge.opaque is not None:
        parts.append(f'opaque="{challenge.opaque}"')
    parts.append(f"algorithm={algo}")
    return "Digest " + ", ".join(parts)
