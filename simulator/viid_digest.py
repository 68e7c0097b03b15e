"""HTTP Digest on the upper VIID platform's side (RFC 7616, its RFC 2617 MD5 profile).

GA/T 1400.4 authenticates Register and UnRegister with HTTP Digest; every capture seen uses
`qop="auth"` and MD5. Nonces here are single-use with a short life, as careful uppers make
them (gat1400-simulator: 32 hex characters, 30 s): a replayed, expired or unknown nonce with
otherwise right credentials is answered with a fresh challenge and `stale=true` (RFC 7616
§3.3), wrong credentials with a fresh challenge without it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass
from enum import StrEnum

_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


class Verdict(StrEnum):
    OK = "ok"
    STALE = "stale"  # right credentials, nonce not (or no longer) valid: retry with the new one
    DENIED = "denied"  # missing or wrong credentials


def parse_digest(header: str) -> dict[str, str]:
    """The parameters of a `Digest ...` header (quoted or token values), or {} if not Digest."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        return {}
    return {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _PARAM.finditer(rest)}


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def expected_response(params: dict[str, str], method: str, password: str) -> str:
    """RFC 2617 §3.2.2.1 with qop=auth: MD5(HA1:nonce:nc:cnonce:qop:HA2)."""
    ha1 = md5(f"{params['username']}:{params['realm']}:{password}")
    ha2 = md5(f"{method}:{params['uri']}")
    return md5(f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:{params['qop']}:{ha2}")


@dataclass
class DigestStats:
    challenges: int = 0
    stale: int = 0
    denied: int = 0
    accepted: int = 0


class DigestGate:
    """Issues challenges and checks Authorization headers; each nonce authenticates one request."""

    def __init__(self, realm: str, users: dict[str, str], nonce_ttl: float = 30.0) -> None:
        self.realm = realm
        self.users = users
        self.nonce_ttl = nonce_ttl
        self.opaque = secrets.token_hex(16)
        self._nonces: dict[str, float] = {}  # nonce → issued (monotonic); removed when used
        self._lock = threading.Lock()
        self.stats = DigestStats()
        self.expire_next = 0  # fault: the next N right answers find their nonce expired

    def forget(self) -> None:
        """A restart: every outstanding nonce (and the opaque) is lost."""
        with self._lock:
            self._nonces.clear()
            self.opaque = secrets.token_hex(16)

    def challenge(self, stale: bool = False) -> str:
        nonce = secrets.token_hex(16)
        now = time.monotonic()
        with self._lock:
            # Expired nonces go when a new one is issued: the table never grows without bound.
            self._nonces = {n: t for n, t in self._nonces.items() if now - t < self.nonce_ttl}
            self._nonces[nonce] = now
            self.stats.challenges += 1
        header = f'Digest realm="{self.realm}", qop="auth", nonce="{nonce}", opaque="{self.opaque}", algorithm=MD5'
        return header + (", stale=true" if stale else "")

    def check(self, method: str, path: str, header: str | None) -> Verdict:
        if not header:
            return Verdict.DENIED  # the first request of every exchange: challenged, not counted as refused
        params = parse_digest(header)
        needed = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")
        password = self.users.get(params.get("username", ""))
        well_formed = (
            all(k in params for k in needed)
            and password is not None
            and params["realm"] == self.realm
            and params["qop"] == "auth"
            and params.get("algorithm", "MD5").upper() == "MD5"
            and re.fullmatch(r"[0-9a-fA-F]{8}", params["nc"]) is not None
            # The uri must name this request (RFC 7616 §3.4.6), query included.
            and params["uri"] == path
        )
        if not well_formed or password is None:
            return self._count(Verdict.DENIED)
        if not secrets.compare_digest(expected_response(params, method, password), params["response"].lower()):
            return self._count(Verdict.DENIED)
        with self._lock:
            issued = self._nonces.pop(params["nonce"], None)  # single use: consumed even if late
            fresh = issued is not None and time.monotonic() - issued < self.nonce_ttl
            if fresh and self.expire_next > 0:
                self.expire_next -= 1
                fresh = False
            opaque_ok = params.get("opaque") == self.opaque
        # A nonce from before a restart comes with the old opaque: stale, not denied.
        return self._count(Verdict.OK if fresh and opaque_ok else Verdict.STALE)

    def _count(self, verdict: Verdict) -> Verdict:
        with self._lock:
            if verdict is Verdict.OK:
                self.stats.accepted += 1
            elif verdict is Verdict.STALE:
                self.stats.stale += 1
            else:
                self.stats.denied += 1
        return verdict
