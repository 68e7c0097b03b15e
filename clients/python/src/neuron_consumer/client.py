"""A consumer's signed, verifying connection to one hub.

Every request is signed; every response, refusals included, must carry a valid signature
of a pinned hub key; every partition must match its signed manifest. Anything that does
not verify raises IntegrityError and is never handed on. 429, 5xx and dropped connections
are retried after Retry-After (at most 60 s) or with exponential backoff and jitter.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.parquet as pq
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from neuron_consumer.errors import ConsumerError, HubRefused, IntegrityError, Unavailable
from neuron_consumer.keys import pinned_keys, verify_jws
from neuron_consumer.signatures import sign_request, signed_sha256, utcnow, verify_response

CHUNK = 1 << 20
wait = time.sleep  # how retries wait (tests replace it)


@dataclass(frozen=True)
class Partition:
    """One verified partition version as stored: its file and its signed manifest."""

    feed: str
    key: str
    version: int
    path: Path
    manifest: dict[str, Any]
    manifest_jws: str

    @property
    def rows(self) -> int:
        return int(self.manifest["rows"])


def check_manifest(
    manifest: dict[str, Any],
    feed: str,
    consumer: str,
    key: str,
    version: int,
    sha256: str,
    size: int,
    parquet: pq.ParquetFile,
) -> None:
    """IntegrityError unless the file (hash, size, rows, columns) is the one the manifest describes."""
    expected = {
        "feed": feed,
        "consumer": consumer,
        "partition": key,
        "version": version,
        "sha256": sha256,
        "bytes": size,
        "rows": parquet.metadata.num_rows,
        "schema": parquet.schema_arrow.names,
    }
    declared = {**manifest, "schema": [f.get("name") for f in manifest.get("schema") or [] if isinstance(f, dict)]}
    for name, value in expected.items():
        if declared.get(name) != value:
            raise IntegrityError(f"partition {key} v{version} of {feed}: {name} does not match its signed manifest")


class Hub:
    """A consumer's client of one hub's export API."""

    def __init__(
        self,
        base_url: str,
        key_id: str,
        private_key: Ed25519PrivateKey,
        pins: set[str],
        *,
        consumer: str | None = None,
        timeout: float = 30,
        retries: int = 3,
        backoff: float = 1.0,
        window_seconds: int = 300,
        now: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] | None = None,
        ca: str | Path | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConsumerError(f"the hub URL must start with http:// or https://, not {base_url!r}")
        if not pins:
            raise ConsumerError("pin the hub's key: --pin THUMBPRINT (from the hub's letter or `neuron keys show`)")
        self.base_url = base_url.rstrip("/")
        self.key_id = key_id
        # Key ids are "<consumer>-<8 hex digits>" unless the hub registered the key under another policy.
        self.consumer = consumer or key_id.rsplit("-", 1)[0]
        self.pins = set(pins)
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.window_seconds, self.now = window_seconds, now
        self.sleep = sleep or wait
        self._private_key = private_key
        self._session = requests.Session()
        if ca is not None:  # the hub's own certificate (hub.crt), as its operator gave it: the channel pinned
            self._session.verify = str(ca)
        self._keys: dict[str, Ed25519PublicKey] | None = None
        self.jwks: dict[str, Any] | None = None

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        self._session.close()

    @property
    def keys(self) -> dict[str, Ed25519PublicKey]:
        """The hub's pinned keys, from its JWKS; the JWKS response must verify with one of them."""
        if self._keys is None:
            response = self._send("/.well-known/jwks.json")
            try:
                jwks = response.json()
            except ValueError as exc:
                raise IntegrityError("the hub's JWKS is not JSON") from exc
            keys = pinned_keys(jwks, self.pins)
            self._verify(response, keys)
            self._check_status(response)
            self._keys, self.jwks = keys, jwks
        return self._keys

    def get(self, path: str, params: dict[str, Any] | None = None) -> requests.Response:
        """A verified answer to a signed GET (HubRefused on a refusal)."""
        keys = self.keys
        response = self._send(path, params)
        self._verify(response, keys)
        self._check_status(response)
        return response

    def feeds(self) -> list[dict[str, Any]]:
        feeds: list[dict[str, Any]] = self.get("/v1/feeds").json()["feeds"]
        return feeds

    def feed(self, name: str) -> dict[str, Any]:
        detail: dict[str, Any] = self.get(f"/v1/feeds/{quote(name, safe='')}").json()
        return detail

    def changes(self, feed: str, since: str | None) -> tuple[list[dict[str, Any]], str]:
        """Partition versions published after `since`, and the cursor after them."""
        body = self.get(f"/v1/feeds/{quote(feed, safe='')}/changes", {"since": since}).json()
        return list(body["changes"]), str(body["next"])

    def ballot_proof(self, receipt: str) -> dict[str, Any]:
        proof: dict[str, Any] = self.get("/v1/feeds/governance.votes/proof", {"receipt": receipt}).json()
        return proof

    def download(self, feed: str, partition_id: str, dest: Path, expected: tuple[str, int]) -> Partition:
        """Stream one partition version to `dest` (atomically), verified against the response
        signature and the signed manifest, which must name `expected` (key, version)."""
        keys = self.keys
        path = f"/v1/feeds/{quote(feed, safe='')}/partitions/{quote(partition_id, safe='')}"
        with self._send(path, stream=True) as response:
            if response.status_code != 200:
                self._verify(response, keys)
                self._check_status(response)
                raise IntegrityError(f"unexpected status {response.status_code} for a partition")
            self._verify(response, keys, whole=False)
            digest = signed_sha256(response)
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
            try:
                hasher, size = hashlib.sha256(), 0
                with open(tmp, "wb") as file:
                    try:
                        for chunk in response.iter_content(CHUNK):
                            hasher.update(chunk)
                            size += len(chunk)
                            file.write(chunk)
                    except requests.RequestException as exc:
                        raise Unavailable(f"a partition of {feed} arrived incomplete ({type(exc).__name__})") from exc
                    file.flush()
                    os.fsync(file.fileno())
                if hasher.digest() != digest:
                    raise IntegrityError(f"a partition of {feed} does not match the digest the hub signed")
                token = response.headers.get("Neuron-Manifest")
                if token is None:
                    raise IntegrityError("the hub's partition response has no Neuron-Manifest header")
                manifest = verify_jws(token, keys)
                key, version = unquote(response.headers.get("Neuron-Partition", "")), expected[1]
                try:
                    parquet = pq.ParquetFile(tmp)
                except pa.ArrowException as exc:
                    raise IntegrityError(f"a partition of {feed} is not a readable Parquet file") from exc
                check_manifest(manifest, feed, self.consumer, expected[0], version, hasher.hexdigest(), size, parquet)
                if key != expected[0] or response.headers.get("Neuron-Partition-Version") != str(version):
                    raise IntegrityError(f"the hub sent another partition of {feed} than the one asked for")
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
        return Partition(feed, expected[0], version, dest, manifest, token)

    def _verify(self, response: requests.Response, keys: dict[str, Ed25519PublicKey], whole: bool = True) -> None:
        """The signature and, when `whole`, the body against Content-Digest (a stream is hashed as it arrives)."""
        body = response.content if whole else None
        verify_response(response, keys, body=body, now=self.now, window_seconds=self.window_seconds)

    @staticmethod
    def _check_status(response: requests.Response) -> None:
        if response.status_code < 400:
            return
        try:
            detail = response.json().get("detail")
        except (ValueError, AttributeError):
            detail = None
        if response.status_code >= 500:
            raise Unavailable(f"the hub is unavailable ({response.status_code}): {detail}")
        raise HubRefused(response.status_code, detail)

    def _send(self, path: str, params: dict[str, Any] | None = None, stream: bool = False) -> requests.Response:
        for attempt in range(self.retries + 1):
            prepared = self._session.prepare_request(requests.Request("GET", self.base_url + path, params=params or {}))
            prepared.headers["Accept-Encoding"] = "identity"  # a compressed body would not match its digest
            sign_request(prepared, self.key_id, self._private_key, created=self.now())
            try:
                response = self._session.send(prepared, timeout=self.timeout, allow_redirects=False, stream=stream)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == self.retries:
                    raise Unavailable(f"the hub at {self.base_url} is unreachable ({type(exc).__name__})") from exc
                self.sleep(self.backoff * 2**attempt * random.uniform(0.5, 1.0))
                continue
            if response.status_code != 429 and response.status_code < 500:
                return response
            response.close()
            if attempt == self.retries:
                raise Unavailable(f"the hub is unavailable ({response.status_code})")
            given = response.headers.get("Retry-After", "")
            wait = min(float(given), 60.0) if given.isdigit() else self.backoff * 2**attempt * random.uniform(0.5, 1.0)
            self.sleep(wait)
        raise AssertionError("unreachable")
