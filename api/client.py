"""The consumer's client of the export API.

Every request is signed (RFC 9421, Ed25519, fresh nonce); every response, refusals
included, must carry a valid hub signature whose Content-Digest matches the body, and
every partition's manifest must verify and match the bytes received (api.verify).
Anything that does not verify raises `kernel.errors.IntegrityError` and is never handed
to the caller. 429 and 5xx answers and dropped connections are retried politely: after
Retry-After when the hub gives one, else with exponential backoff and jitter.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.download import download_to
from api.signing import sign_request
from api.verify import PartitionDownload, header, utcnow, verify_head, verify_partition, verify_response
from kernel.errors import ConfigError, FatalError, IntegrityError, RetriableError
from privacy.tls import jwks_fingerprint

__all__ = ["HubClient", "HubRefused", "PartitionDownload", "verify_partition", "verify_response"]

MAX_RETRY_AFTER = 60.0  # seconds; Retry-After is read before the response is verified


class HubRefused(FatalError):
    """The hub answered, with a valid signature, that it will not serve the request."""

    def __init__(self, status_code: int, detail: Any) -> None:
        super().__init__(f"the hub refused the request ({status_code}): {detail}")
        self.status_code = status_code
        self.detail = detail


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _retriable(status: int) -> bool:
    return status == 429 or status >= 500


class HubClient:
    """A consumer's signed, verifying connection to one hub."""

    def __init__(
        self,
        base_url: str,
        key_id: str,
        private_key: Ed25519PrivateKey,
        jwks: dict[str, Any] | None = None,
        timeout: float = 30,
        *,
        retries: int = 3,
        backoff: float = 1.0,
        window_seconds: int = 300,
        now: Callable[[], datetime] = utcnow,
        consumer: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jwks_fingerprint: str | None = None,
        ca: Path | str | None = None,
    ) -> None:
        if jwks is None and not jwks_fingerprint:
            # Never trust on first use (issue 17): keys fetched from the hub are only as good
            # as the channel they came over, so they must match a fingerprint given out of band.
            raise ConfigError("pin the hub's keys: give its JWKS or the fingerprint `neuron keys show` prints")
        self.base_url = base_url.rstrip("/")
        self.key_id = key_id
        # Manifests name the policy's consumer. By default that is the consumer's own name,
        # which key ids start with ("<consumer>-<8 hex digits>", api.consumers.key_id_for);
        # a consumer registered under another policy's name passes that name here.
        self.consumer = consumer or key_id.rsplit("-", 1)[0]
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.window_seconds = window_seconds
        self.now = now
        self.sleep = sleep
        self._private_key = private_key
        self._jwks = jwks
        self._fingerprint = jwks_fingerprint
        self._session = requests.Session()
        if ca is not None:
            self._session.verify = str(ca)  # the hub's own certificate, as its operator gave it

    def close(self) -> None:
        """Close the underlying connections."""
        self._session.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def jwks(self) -> dict[str, Any]:
        """The hub's keys: as given, or fetched once, matched against the pinned fingerprint,
        and checked to vouch for themselves."""
        if self._jwks is None:
            response = self._send("/.well-known/jwks.json")
            try:
                candidate = response.json()
            except ValueError as exc:
                raise IntegrityError("the hub's JWKS is not JSON") from exc
            if not isinstance(candidate, dict):
                raise IntegrityError("the hub's JWKS is not a JSON object")
            if jwks_fingerprint(candidate) != self._fingerprint:
                raise IntegrityError("the hub's JWKS does not match the pinned fingerprint")
            verify_response(response, candidate, now=self.now, window_seconds=self.window_seconds)
            self._check_status(response)
            self._jwks = candidate
        return self._jwks

    def verify(self, response: requests.Response, jwks: dict[str, Any] | None = None) -> None:
        """Verify a response against the hub's keys (IntegrityError if it does not verify)."""
        keys = self.jwks if jwks is None else jwks
        verify_response(response, keys, now=self.now, window_seconds=self.window_seconds)

    def catalog(self) -> list[dict[str, Any]]:
        """The feeds this consumer is granted."""
        feeds: list[dict[str, Any]] = self._get("/v1/feeds").json()["feeds"]
        return feeds

    def feed(self, name: str) -> dict[str, Any]:
        """One feed's details: fields, treatments, policy, watermark."""
        detail: dict[str, Any] = self._get(f"/v1/feeds/{quote(name, safe='')}").json()
        return detail

    def records_ndjson(
        self, feed: str, cursor: str | None = None, limit: int | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """A page of rows after `cursor`, and the cursor to ask with next."""
        response = self._records(feed, cursor, limit, "ndjson", "application/x-ndjson")
        # One parse of the page as a JSON array: several times faster than a parse per line.
        lines = [line for line in response.content.decode().split("\n") if line]
        rows: list[dict[str, Any]] = json.loads("[" + ",".join(lines) + "]")
        return rows, header(response, "Neuron-Next-Cursor")

    def records_csv(self, feed: str, cursor: str | None = None, limit: int | None = None) -> tuple[str, str]:
        """A page of rows after `cursor` as CSV text (with its header line), and the next cursor."""
        response = self._records(feed, cursor, limit, "csv", "text/csv")
        return response.content.decode(), header(response, "Neuron-Next-Cursor")

    def _records(self, feed: str, cursor: str | None, limit: int | None, fmt: str, media: str) -> requests.Response:
        params = {"cursor": cursor, "limit": limit, "format": fmt}
        response = self._get(f"/v1/feeds/{quote(feed, safe='')}/records", params)
        if not response.headers.get("content-type", "").startswith(media):
            raise IntegrityError(f"the hub's records response is not {fmt}")
        return response

    def changes(
        self, feed: str, since: str | None = None, limit: int | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """Partition versions published after `since` (superseded ones left out), and the next cursor."""
        response = self._get(f"/v1/feeds/{quote(feed, safe='')}/changes", {"since": since, "limit": limit})
        body = response.json()
        return list(body["changes"]), str(body["next"])

    def ballot_proof(self, receipt: str) -> dict[str, Any]:
        """The inclusion proof of an owner's ballot (governance.votes); check it with warehouse.merkle.verify_ballot."""
        proof: dict[str, Any] = self._get("/v1/feeds/governance.votes/proof", {"receipt": receipt}).json()
        return proof

    def alarms(self, since: str | None = None, limit: int | None = None) -> tuple[list[dict[str, Any]], str]:
        """Alarms after `since`, and the cursor to ask with next."""
        body = self._get("/v1/alarms", {"since": since, "limit": limit}).json()
        return list(body["alarms"]), str(body["next"])

    def next_partition(self, feed: str, cursor: str | None) -> tuple[PartitionDownload | None, str]:
        """The next partition version after `cursor` (None when caught up) and the cursor after it."""
        params = {"cursor": cursor, "format": "parquet"}
        response = self._get(f"/v1/feeds/{quote(feed, safe='')}/records", params)
        next_cursor = header(response, "Neuron-Next-Cursor")
        if response.status_code == 204:
            return None, next_cursor
        return verify_partition(response, feed, self.consumer, self.jwks), next_cursor

    def download_partition(
        self, feed: str, partition_id: str, dest: Path, expected: tuple[str, int] | None = None
    ) -> PartitionDownload:
        """Stream a partition version to `dest` (atomically, memory bounded), verified against
        the response signature and the signed manifest (and `expected` (key, version), if given)."""
        jwks = self.jwks
        path = f"/v1/feeds/{quote(feed, safe='')}/partitions/{quote(partition_id, safe='')}"
        with self._send(path, stream=True) as response:
            if response.status_code != 200:
                self.verify(response, jwks)  # reads the (small) body
                self._check_status(response)
                raise IntegrityError(f"unexpected status {response.status_code} for a partition")
            digest = verify_head(response, jwks, now=self.now, window_seconds=self.window_seconds)
            return download_to(response, digest, dest, feed, self.consumer, jwks, expected)

    def _get(self, path: str, params: dict[str, Any] | None = None) -> requests.Response:
        jwks = self.jwks  # before the request: the JWKS fetch is a request of its own
        response = self._send(path, params)
        self.verify(response, jwks)
        self._check_status(response)
        return response

    @staticmethod
    def _check_status(response: requests.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        try:
            detail = response.json().get("detail")
        except (ValueError, AttributeError):
            detail = None
        if status >= 500:
            raise RetriableError(f"the hub is unavailable ({status}): {detail}")
        raise HubRefused(status, detail)

    def _wait(self, attempt: int, response: requests.Response | None) -> None:
        given = _retry_after(response) if response is not None else None
        # Jitter keeps many consumers that failed together from retrying together.
        self.sleep(given if given is not None else self.backoff * 2**attempt * random.uniform(0.5, 1.0))

    def _send(self, path: str, params: dict[str, Any] | None = None, stream: bool = False) -> requests.Response:
        """Send a freshly signed GET, retrying politely on 429, 5xx and connection errors."""
        for attempt in range(self.retries + 1):
            request = requests.Request("GET", self.base_url + path, params=params or {})
            prepared = self._session.prepare_request(request)
            # A proxy that compressed the body would break the Content-Digest check.
            prepared.headers["Accept-Encoding"] = "identity"
            sign_request(prepared, self.key_id, self._private_key, created=self.now())
            try:
                response = self._session.send(prepared, timeout=self.timeout, allow_redirects=False, stream=stream)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == self.retries:
                    raise RetriableError(f"the hub at {self.base_url} is unreachable ({type(exc).__name__})") from exc
                self._wait(attempt, None)
                continue
            if not _retriable(response.status_code):
                return response
            response.close()
            if attempt == self.retries:
                # Often a proxy's unsigned answer: nothing in it is used, so it need not verify.
                raise RetriableError(f"the hub is unavailable ({response.status_code})")
            self._wait(attempt, response)
        raise AssertionError("unreachable")
