"""Verifying what the hub sends: the signature and Content-Digest of every response, and
each partition against its signed manifest. Anything that does not verify raises
`kernel.errors.IntegrityError`.

A partition may be too large to hold in memory: `verify_head` checks the signature over
the head alone and returns the SHA-256 the body must have; the caller hashes the body as
it streams to disk and `check_partition` compares the file with the manifest.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from http_message_signatures import HTTPMessageSignaturesException, InvalidSignature, MappingKeyResolver

from api.signing import (
    Outside,
    UnknownKey,
    WindowVerifier,
    check_body_digest,
    check_window,
    parse_signature,
    public_keys_from_jwks,
    response_components,
    response_resolver,
    signature_base,
    verify_ed25519,
)
from kernel.errors import IntegrityError
from privacy.jws import verify_json

# The request URLs the lean path accepts (api.signing checks path and query characters itself).
_URL_SHAPE = re.compile(
    r"https?://[a-z0-9\-.]+(?::[0-9]{1,5})?/(?:[A-Za-z0-9._~!$&'()*+,;=:@/\-]|%[0-9A-Fa-f]{2})*"
    r"(?:\?(?:[A-Za-z0-9._~!$&'()*+,;=:@/?\-]|%[0-9A-Fa-f]{2})*)?"
)
SHA256_DIGEST = re.compile(r"^\s*sha-256=:([A-Za-z0-9+/]+=*):\s*$")


@dataclass(frozen=True)
class PartitionDownload:
    """One verified partition version: its Parquet bytes (or the file holding them) and its manifest."""

    feed: str
    partition_key: str
    version: int
    data: bytes
    manifest: dict[str, Any]
    manifest_jws: str
    path: Path | None = None

    @property
    def rows(self) -> int:
        return int(self.manifest["rows"])


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def _verifier(jwks: dict[str, Any], now: Callable[[], datetime], window_seconds: int) -> WindowVerifier:
    keys = MappingKeyResolver(public_keys=public_keys_from_jwks(jwks), private_keys={})
    return WindowVerifier(keys, timedelta(seconds=window_seconds), now)


def _required(response: requests.Response) -> list[str]:
    request = response.request
    bound = request is not None and "signature" in request.headers
    return ["content-digest", *response_components(list(response.headers), bound)]


@lru_cache(maxsize=32)
def _jwks_keys(members: tuple[tuple[str, str], ...]) -> dict[str, Ed25519PublicKey]:
    jwks = {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": x} for kid, x in members]}
    return public_keys_from_jwks(jwks)


def _keys(jwks: dict[str, Any]) -> dict[str, Ed25519PublicKey]:
    """The JWKS's Ed25519 keys, parsed once per distinct key set (a client verifies every response)."""
    members = tuple(
        (str(jwk.get("kid")), str(jwk.get("x")))
        for jwk in jwks.get("keys", [])
        if isinstance(jwk, dict) and jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519" and "kid" in jwk
    )
    return _jwks_keys(members)


def _verify_lean(
    response: requests.Response, jwks: dict[str, Any], now: datetime, window_seconds: int, body: bytes | None
) -> None:
    """The library's verification of a hub response, for the lean profile (api.signing); `Outside` otherwise."""
    headers, request = response.headers, response.request
    signature = parse_signature(headers.get("Signature-Input"), headers.get("Signature"))
    check_window(signature, now, timedelta(seconds=window_seconds))
    key = _keys(jwks).get(signature.key_id or "")
    if key is None:
        raise UnknownKey("Unable to resolve verification key")
    request_header = None
    if request is not None:
        method, url = request.method, request.url
        if method is None or method != method.upper() or url is None or _URL_SHAPE.fullmatch(url) is None:
            raise Outside  # the library parses the request's URL; an odd one is for it to judge
        request_header = request.headers.get
    resolve = response_resolver(response.status_code, headers.get, request_header)
    verify_ed25519(key, signature, signature_base(signature, resolve))
    required = [
        "content-digest",
        *response_components(list(headers), request_header is not None and "signature" in request.headers),
    ]
    for component in required:
        identifier = component if component.startswith('"') else f'"{component}"'
        if identifier not in signature.components:
            raise InvalidSignature(f"Required component {identifier} was not covered by the signature")
    if body is not None:
        check_body_digest(signature, headers.get("Content-Digest"), body)


def _verify(
    response: requests.Response,
    jwks: dict[str, Any],
    now: Callable[[], datetime],
    window_seconds: int,
    body: bytes | None,
) -> None:
    try:
        try:
            _verify_lean(response, jwks, now(), window_seconds, body)
            return
        except Outside:
            pass
        verifier = _verifier(jwks, now, window_seconds)
        verifier.verify(response, max_age=None, require_components=_required(response), body=body)
    except HTTPMessageSignaturesException as exc:
        reason = str(exc) or "the signature does not match the response"
        raise IntegrityError(f"a response from the hub does not verify: {reason}") from exc


def verify_response(
    response: requests.Response,
    jwks: dict[str, Any],
    *,
    now: Callable[[], datetime] = utcnow,
    window_seconds: int = 300,
) -> None:
    """Check the hub's signature on a response and its Content-Digest; IntegrityError otherwise."""
    _verify(response, jwks, now, window_seconds, response.content)


def verify_head(
    response: requests.Response,
    jwks: dict[str, Any],
    *,
    now: Callable[[], datetime] = utcnow,
    window_seconds: int = 300,
) -> bytes:
    """Check the signature over a streamed response's head; return the SHA-256 its body must have."""
    _verify(response, jwks, now, window_seconds, None)
    match = SHA256_DIGEST.match(header(response, "Content-Digest"))
    if match is None:
        raise IntegrityError("the hub's Content-Digest is not a single sha-256 digest")
    return base64.b64decode(match.group(1))


def check_partition(
    headers: Any, feed: str, consumer: str, jwks: dict[str, Any], sha256: str, size: int, parquet: pq.ParquetFile
) -> tuple[str, int, dict[str, Any], str]:
    """Compare a partition (its hash, size, Parquet metadata) with its signed manifest.

    Returns the partition key, version, manifest and manifest JWS; IntegrityError on any mismatch.
    """
    token = _required_header(headers, "Neuron-Manifest")
    manifest = verify_json(token, jwks)
    key = unquote(_required_header(headers, "Neuron-Partition"))
    try:
        version = int(_required_header(headers, "Neuron-Partition-Version"))
    except ValueError as exc:
        raise IntegrityError(f"partition {key} of {feed} has no valid version") from exc
    expected = {
        "feed": feed,
        "consumer": consumer,
        "partition": key,
        "version": version,
        "sha256": sha256,
        "bytes": size,
        "rows": parquet.metadata.num_rows,
        # The manifest lists the columns too: the file must hold exactly those.
        "schema": parquet.schema_arrow.names,
    }
    declared = {**manifest, "schema": [f.get("name") for f in manifest.get("schema") or [] if isinstance(f, dict)]}
    for name, value in expected.items():
        if declared.get(name) != value:
            raise IntegrityError(f"partition {key} v{version} of {feed}: {name} does not match its manifest")
    return key, version, manifest, token


def verify_partition(response: requests.Response, feed: str, consumer: str, jwks: dict[str, Any]) -> PartitionDownload:
    """Check a partition held in memory against its signed manifest; IntegrityError on any mismatch."""
    data = response.content
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
    except pa.ArrowException as exc:
        raise IntegrityError(f"a partition of {feed} is not a readable Parquet file") from exc
    digest = hashlib.sha256(data).hexdigest()
    key, version, manifest, token = check_partition(response.headers, feed, consumer, jwks, digest, len(data), parquet)
    return PartitionDownload(feed, key, version, data, manifest, token)


def _required_header(headers: Any, name: str) -> str:
    value = headers.get(name)
    if value is None:
        raise IntegrityError(f"the hub's response lacks the {name} header")
    return str(value)


def header(response: requests.Response, name: str) -> str:
    """A header the hub always sends; IntegrityError when it is missing."""
    return _required_header(response.headers, name)
