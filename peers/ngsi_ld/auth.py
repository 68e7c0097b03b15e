"""Credentials for a consumer's broker: a static bearer token, or OAuth2 client credentials
(RFC 6749 §4.4) renewed before they lapse and once more when the broker says 401."""

from __future__ import annotations

import threading
import time

import requests

from kernel.errors import FatalError, RetriableError
from kernel.push_settings import BearerAuth, NgsiLdPush, NoAuth, OAuth2Auth


class BrokerAuthError(FatalError):
    """The broker or its token endpoint refused our credentials: fix the configuration."""


class Credentials:
    """The Authorization header to send; `renew` after a 401 (a revoked or lapsed token)."""

    def __init__(self, push: NgsiLdPush, http: requests.Session | None = None) -> None:
        self.push, self.auth = push, push.auth
        self.http = http or requests.Session()
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self.issued = 0  # tokens taken from the token endpoint (tests and metrics)

    def headers(self) -> dict[str, str]:
        auth = self.auth
        if isinstance(auth, NoAuth):
            return {}
        if isinstance(auth, BearerAuth):
            return {"Authorization": f"Bearer {_configured(auth.secret, self.push.name)}"}
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires:
                self._fetch(auth)
            return {"Authorization": f"Bearer {self._token}"}

    def renew(self) -> bool:
        """Forget the token after a 401; whether a new one can be fetched (OAuth2 only)."""
        if not isinstance(self.auth, OAuth2Auth):
            return False
        with self._lock:
            self._token = None
        return True

    def _fetch(self, auth: OAuth2Auth) -> None:
        form = {"grant_type": "client_credentials"}
        if auth.scope:
            form["scope"] = auth.scope
        # Client authentication by HTTP Basic (RFC 6749 §2.3.1, which servers MUST support).
        basic = (auth.client_id, _configured(auth.secret, self.push.name))
        try:
            answer = self.http.post(auth.token_url, data=form, auth=basic, timeout=self.push.timeout_seconds)
        except requests.RequestException as exc:
            raise RetriableError(f"push {self.push.name}: token endpoint unreachable ({type(exc).__name__})") from None
        if answer.status_code >= 500:
            raise RetriableError(f"push {self.push.name}: token endpoint answered {answer.status_code}")
        if answer.status_code != 200:
            raise BrokerAuthError(
                f"push {self.push.name}: the token endpoint refused the client credentials ({answer.status_code});"
                " check auth.client_id and the client secret"
            )
        body = answer.json()
        self._token = str(body["access_token"])
        # expires_in is RECOMMENDED, not required (§5.1): without it, renew after five minutes.
        lifetime = float(body.get("expires_in") or 300)
        self._expires = time.monotonic() + max(1.0, lifetime - auth.refresh_margin_seconds)
        self.issued += 1


def _configured(secret: object, name: str) -> str:
    try:
        return str(secret() if callable(secret) else secret)
    except ValueError as exc:
        raise BrokerAuthError(f"push {name}: {exc}") from None
