"""The lower platform's requests to the upper: Register/UnRegister (Digest), Keepalive, Time, notifications.

Every request but Register/UnRegister names us with `User-Identify` (GA/T 1400.4); bodies are
`application/VIID+JSON`. Errors say what failed and the HTTP status, never a body (a body could
echo a plate).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import requests

from kernel.errors import FatalError, RetriableError
from kernel.viid_settings import ViidSettings
from peers.viid.digest import authorization, parse_challenge
from peers.viid.protocol import LOCAL, OK, VIID_JSON, parse_viid_time, status_code, status_list

log = logging.getLogger(__name__)


class UpperUnavailable(RetriableError):
    """No usable answer (connection refused or cut, timeout, 5xx, garbage): try again later."""


class NotRegistered(RetriableError):
    """The upper does not (or no longer) know us (401, or a keepalive refused): register again."""


class CredentialsRefused(FatalError):
    """The upper refused our Digest credentials with a fresh nonce: the password or id is wrong."""


class UpperClient:
    """One keep-alive HTTP session to the upper platform."""

    def __init__(self, config: ViidSettings) -> None:
        self.config = config
        self.base = config.upper_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Accept"] = VIID_JSON + ", application/json"
        self.timeout = (min(config.timeout_seconds, 5.0), config.timeout_seconds)

    def close(self) -> None:
        self.session.close()

    def _post(self, url: str, body: dict[str, Any], headers: dict[str, str], what: str) -> requests.Response:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            reply = self.session.post(
                url, data=data, headers={"Content-Type": VIID_JSON, **headers}, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise UpperUnavailable(f"VIID upper: {what}: no answer ({type(exc).__name__})") from exc
        if reply.status_code >= 500:
            raise UpperUnavailable(f"VIID upper: {what}: HTTP {reply.status_code}")
        return reply

    @staticmethod
    def _json(reply: requests.Response, what: str) -> Any:
        try:
            return reply.json()
        except ValueError as exc:
            raise UpperUnavailable(f"VIID upper: {what}: the answer is not JSON (HTTP {reply.status_code})") from exc

    def _digest_post(self, path: str, body: dict[str, Any], what: str) -> None:
        """POST with HTTP Digest: the first try draws the challenge; a stale nonce is answered again."""
        url = self.base + path
        headers = {"User-Identify": self.config.device_id}  # captured lowers send it on Register too
        reply = self._post(url, body, headers, what)
        for _ in range(3):  # the first challenge, then at most two stale nonces in a row
            if reply.status_code != 401:
                break
            challenge = parse_challenge(reply.headers.get("WWW-Authenticate"))
            if challenge is None:
                raise CredentialsRefused(f"VIID upper: {what}: 401 without a Digest challenge we can answer")
            password = self.config.password.get_secret_value()
            auth = authorization(challenge, "POST", path, self.config.login, password)
            reply = self._post(url, body, {**headers, "Authorization": auth}, what)
            if reply.status_code == 401:
                again = parse_challenge(reply.headers.get("WWW-Authenticate"))
                if again is None or not again.stale:
                    raise CredentialsRefused(f"VIID upper: {what}: Digest credentials refused (check id and password)")
                log.info("viid: %s: nonce went stale, answering the fresh challenge", what)
        if reply.status_code != 200:
            raise UpperUnavailable(f"VIID upper: {what}: HTTP {reply.status_code}")
        codes = [status_code(s) for s in status_list(self._json(reply, what))]
        if codes[:1] != [OK]:
            raise UpperUnavailable(f"VIID upper: {what}: StatusCode {codes[0] if codes else 'missing'}")

    def register(self) -> None:
        self._digest_post("/VIID/System/Register", {"RegisterObject": {"DeviceID": self.config.device_id}}, "register")

    def unregister(self) -> None:
        body = {"UnRegisterObject": {"DeviceID": self.config.device_id}}
        self._digest_post("/VIID/System/UnRegister", body, "unregister")

    def keepalive(self) -> None:
        """One keepalive; NotRegistered when the upper does not know us (any non-zero StatusCode too)."""
        body = {"KeepaliveObject": {"DeviceID": self.config.device_id}}
        reply = self._post(
            self.base + "/VIID/System/Keepalive", body, {"User-Identify": self.config.device_id}, "keepalive"
        )
        if reply.status_code == 401:
            raise NotRegistered("VIID upper: keepalive: not registered (HTTP 401)")
        codes = [status_code(s) for s in status_list(self._json(reply, "keepalive"))]
        if reply.status_code != 200 or codes[:1] != [OK]:
            raise NotRegistered(f"VIID upper: keepalive refused (HTTP {reply.status_code}, StatusCode {codes[:1]})")

    def clock_skew(self) -> float | None:
        """Seconds the upper's clock is ahead of ours (/VIID/System/Time), or None if it does not say."""
        try:
            reply = self.session.get(
                self.base + "/VIID/System/Time", headers={"User-Identify": self.config.device_id}, timeout=self.timeout
            )
            body = reply.json() if reply.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None
        obj = body.get("SystemTimeObject") if isinstance(body, dict) else None
        theirs = parse_viid_time(obj.get("LocalTime")) if isinstance(obj, dict) else None
        return (theirs - datetime.now(LOCAL)).total_seconds() if theirs else None

    def notify(self, url: str, notifications: list[dict[str, Any]]) -> dict[str, int | None]:
        """POST notifications to a ReceiveAddr; NotificationID → StatusCode (None: no status for it)."""
        body = {"SubscribeNotificationListObject": {"SubscribeNotificationObject": notifications}}
        reply = self._post(url, body, {"User-Identify": self.config.device_id}, "notification")
        if reply.status_code == 401:
            raise NotRegistered("VIID upper: notification: not registered (HTTP 401)")
        if reply.status_code != 200:
            raise UpperUnavailable(f"VIID upper: notification: HTTP {reply.status_code}")
        statuses = status_list(self._json(reply, "notification"))
        ids = [str(n["NotificationID"]) for n in notifications]
        by_id = {str(s.get("Id")): status_code(s) for s in statuses if str(s.get("Id")) in ids}
        if len(by_id) < len(ids) and len(statuses) == len(ids):
            # The standard: one entry per submitted object, in the same order; `Id` names it. An
            # upper that leaves Id empty is matched by position.
            by_id = {nid: status_code(s) for nid, s in zip(ids, statuses, strict=True)}
        if len(statuses) == 1 and len(ids) > 1 and not by_id:
            return {}  # a single status for a list: not an acknowledgement of each
        return {nid: by_id.get(nid) for nid in ids}
