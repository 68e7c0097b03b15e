"""Verifying what the hub sends: the signature and Content-Digest of every response, and
each partition against its signed manifest. Anything that does not verify raises
`neuron.errors.IntegrityError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
import requests
from http_message_signatures import HTTPMessageSignaturesException, MappingKeyResolver

from api.signing import WindowVerifier, public_keys_from_jwks, response_components
from neuron.errors import IntegrityError
from privacy.jws import verify_json


@dataclass(frozen=True)
class PartitionDownload:
    """One verified partition version: its Parquet bytes and its signed manifest."""

    feed: str
    partition_key: str
    version: int
    data: bytes
    manifest: dict[str, Any]
    manifest_jws: str

    @property
    def rows(self) -> int:
        return int(self.manifest["rows"])


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def verify_response(
    response: requests.Response,
    jwks: dict[str, Any],
    *,
    now: Callable[[], datetime] = utcnow,
    window_seconds: int = 300,
) -> None:
    """Check the hub's signature on a response and its Content-Digest; IntegrityError otherwise."""
    keys = MappingKeyResolver(public_keys=public_keys_from_jwks(jwks), private_keys={})
    verifier = WindowVerifier(keys, timedelta(seconds=window_seconds), now)
    request = response.request
    bound = request is not None and "signature" in request.headers
    required = ["content-digest", *response_components(list(response.headers), bound)]
    try:
        verifier.verify(response, max_age=None, require_components=required, body=response.content)
    except HTTPMessageSignaturesException as exc:
        reason = str(exc) or "the signature does not match the response"
        raise IntegrityError(f"a response from the hub does not verify: {reason}") from exc


def verify_partition(response: requests.Response, feed: str, consumer: str, jwks: dict[str, Any]) -> PartitionDownload:
    """Check a partition response against its signed manifest; IntegrityError on any mismatch."""
    token = header(response, "Neuron-Manifest")
    manifest = verify_json(token, jwks)
    data = response.content
    key = unquote(header(response, "Neuron-Partition"))
    try:
        version = int(header(response, "Neuron-Partition-Version"))
        parquet = pq.ParquetFile(pa.BufferReader(data))
    except (ValueError, pa.ArrowException) as exc:
        raise IntegrityError(f"partition {key} of {feed} is not a readable Parquet file") from exc
    expected = {
        "feed": feed,
        "consumer": consumer,
        "partition": key,
        "version": version,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "rows": parquet.metadata.num_rows,
        # The manifest lists the columns too: the file must hold exactly those.
        "schema": parquet.schema_arrow.names,
    }
    declared = {**manifest, "schema": [f.get("name") for f in manifest.get("schema") or [] if isinstance(f, dict)]}
    for name, value in expected.items():
        if declared.get(name) != value:
            raise IntegrityError(f"partition {key} v{version} of {feed}: {name} does not match its manifest")
    return PartitionDownload(feed, key, version, data, manifest, token)


def header(response: requests.Response, name: str) -> str:
    """A header the hub always sends; IntegrityError when it is missing."""
    value = response.headers.get(name)
    if value is None:
        raise IntegrityError(f"the hub's response lacks the {name} header")
    return value
