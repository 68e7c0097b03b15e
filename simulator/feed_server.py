"""Signed-feed hubs on loopback: one HTTP server that plays many communities' export APIs, each
with its own Ed25519 keys, for the district's tests and benchmark.

Built from the export API's protocol as README.md and docs/security.md state it, not from
the district's client: every request must carry a valid RFC 9421 signature (label `neuron`,
`@method @authority @path @query`, `created` within the window, a one-time nonce) by a key
registered for the community; every response is signed RFC 9421 (label `hub`, `@status`,
`content-digest`, `content-type`, every `Neuron-*` header, the request's signature bound with
`;req`); every partition version carries a compact-JWS manifest (SHA-256, bytes, rows,
schema, partition, version, supersedes). The signature bytes and the JWS are made with the
hub's own protocol code (api.response_signing.sign_response, privacy.jws.sign_json), the
rest (routes, change log, cursors, data) is this simulator's.

Community `c` answers under `<url>/c/<c>/…` (`.well-known/jwks.json`, `v1/feeds`,
`v1/feeds/{feed}/changes`, `v1/feeds/{feed}/partitions/{id}`). Faults, per community:
`down` (503 to everything), `slow` (each answer delayed), and per partition `tamper_body`
(bytes changed after signing: a man in the middle), `tamper_manifest` (the hub signs a
response whose bytes are not the manifest's) and `foreign_rows` (a correctly signed
partition holding another community's rows).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote

import pyarrow as pa
import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from api.asgi import FieldLines, body_digest
from api.response_signing import sign_response
from api.signing import (
    REQUEST_COMPONENTS,
    check_window,
    parse_signature,
    request_components,
    signature_base,
    verify_ed25519,
)
from privacy.jws import sign_json
from privacy.keys import SigningKey
from privacy.policy import load_policies
from schemas.contract import ARROW_TYPES
from schemas.feeds import Feed, load_feeds

PARQUET = "application/vnd.apache.parquet"
WINDOW = timedelta(seconds=300)
ARROW = {**ARROW_TYPES, "date": pa.date32()}
FAULTS = ("tamper_body", "tamper_manifest", "foreign_rows")


def district_fields() -> dict[str, list[str]]:
    """The feeds the district's policy (config/policies/district.yaml) grants, with their fields."""
    policy = load_policies(Path(__file__).resolve().parent.parent / "config" / "policies")["district"]
    return {name: policy.published_fields(feed) for name, feed in load_feeds().items() if policy.grants(name)}


def partition_table(feed: Feed, fields: list[str], community: str, day: date, version: int) -> pa.Table:
    """Deterministic rows of one partition (the version shows in the numbers)."""
    rng = random.Random(f"{feed.name}/{community}/{day}/{version}")
    count = {"hourly": 48, "realtime": 6}.get(feed.cadence, 8)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    types = {f.name: ARROW[f.type] for f in feed.fields}
    columns: dict[str, list[Any]] = {}
    for name in fields:
        kind = types[name]
        if name == "community_id":
            values: list[Any] = [community] * count
        elif name in ("day", "month"):
            values = [day] * count
        elif name == "hour_start":
            values = [start + timedelta(hours=i % 24) for i in range(count)]
        elif name == "device_id":
            values = [f"{community}-s{i // 24}" for i in range(count)]
        elif name == "category":
            values = [rng.choice(["smoke", "gas", "fall", "sos"]) for _ in range(count)]
        elif name == "response_seconds":
            values = [rng.randint(20, 900) + version for _ in range(count)]
        elif name.startswith("pm25"):
            values = [round(rng.uniform(5, 80) + version, 1) for _ in range(count)]
        elif pa.types.is_timestamp(kind):
            values = [start + timedelta(minutes=rng.randint(0, 1439)) for _ in range(count)]
        elif pa.types.is_date(kind):
            values = [day] * count
        elif pa.types.is_integer(kind):
            values = [rng.randint(0, 500) + version for _ in range(count)]
        elif pa.types.is_floating(kind):
            values = [round(rng.uniform(0, 100), 2) for _ in range(count)]
        elif pa.types.is_boolean(kind):
            values = [rng.random() < 0.2 for _ in range(count)]
        else:
            values = [f"{name}-{rng.randint(1, 9)}" for _ in range(count)]
        columns[name] = values
    schema = pa.schema([(name, types[name]) for name in fields])
    return pa.Table.from_pydict(columns, schema=schema)


def parquet(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


@dataclass
class Version:
    """One published partition version."""

    seq: int
    feed: str
    partition_key: str
    version: int
    data: bytes
    sha256: str
    rows: int
    manifest_jws: str
    published_at: datetime


@dataclass
class Community:
    """One played hub: its keys, what it published, the consumers' keys, its faults."""

    community_id: str
    key: SigningKey
    consumers: dict[str, Ed25519PublicKey] = field(default_factory=dict)  # key id → public key
    versions: list[Version] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)
    down: bool = False
    slow_seconds: float = 0.0
    faults: dict[tuple[str, str], str] = field(default_factory=dict)  # (feed, partition key) → fault
    served: int = 0
    forged: dict[int, Version] = field(default_factory=dict)  # seq → what `foreign_rows` serves instead

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.public_jwk()]}

    def latest(self, feed: str, after: int) -> list[Version]:
        """Versions of the feed after seq `after`, superseded ones left out (as the hub's log does)."""
        newest: dict[str, int] = {}
        for v in self.versions:
            if v.feed == feed:
                newest[v.partition_key] = max(newest.get(v.partition_key, 0), v.version)
        return [v for v in self.versions if v.feed == feed and v.seq > after and v.version == newest[v.partition_key]]


def _signing_key(community: str) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    now = datetime.now(UTC)
    return SigningKey(
        f"{community}-{hashlib.sha256(community.encode()).hexdigest()[:6]}", private, now, now + timedelta(days=365)
    )


class FeedServer:
    """Many communities' signed export APIs on one loopback port (port 0: a free one)."""

    def __init__(self, port: int = 0, consumer: str = "district") -> None:
        self.consumer = consumer
        self.feeds = load_feeds()
        self.granted = district_fields()
        self.communities: dict[str, Community] = {}
        self.lock = threading.Lock()
        self._seq = 0
        handler = type("Handler", (_Handler,), {"hubs": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]  # clients that left
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def base_url(self, community: str) -> str:
        return f"{self.url}/c/{community}"

    def add_community(self, community: str, consumer_key: Ed25519PublicKey, key_id: str) -> Community:
        """A new community whose hub has registered the consumer's public key under `key_id`."""
        played = Community(community, _signing_key(community), {key_id: consumer_key})
        self.communities[community] = played
        return played

    def publish(
        self, community: str, feed: str, day: date, version: int | None = None, table: pa.Table | None = None
    ) -> Version:
        """Publish one partition version (rows generated unless given), as a hub's publisher would:
        by default the next version of the partition, and none when the bytes are unchanged."""
        played = self.communities[community]
        spec = self.feeds[feed]
        time_column = "month" if "month" in spec.partition_by else "day"
        if time_column == "month":
            day = day.replace(day=1)
        key = f"community_id={community}/{time_column}={day.isoformat()}"
        previous = [v for v in played.versions if v.feed == feed and v.partition_key == key]
        latest = max(previous, key=lambda v: v.version) if previous else None
        explicit = version is not None
        version = version if version is not None else (latest.version + 1 if latest else 1)
        if table is None:
            table = partition_table(spec, self.granted[feed], community, day, version)
        data = parquet(table)
        digest = hashlib.sha256(data).hexdigest()
        if latest is not None and not explicit and latest.sha256 == digest:
            return latest
        now = datetime.now(UTC)
        manifest = {
            "feed": feed,
            "feed_version": spec.version,
            "consumer": self.consumer,
            "partition": key,
            "version": version,
            "supersedes": version - 1 if version > 1 else None,
            "file": f"{self.consumer}/{feed}/{key}/v{version}.parquet",
            "sha256": digest,
            "bytes": len(data),
            "rows": table.num_rows,
            "schema": [{"name": f.name, "type": str(f.type)} for f in table.schema],
            "policy": {"name": self.consumer, "version": 1},
            "policy_fingerprint": "sha256:simulated",
            "watermark": (datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)).isoformat(),
            "published_at": now.isoformat(),
        }
        with self.lock:
            self._seq += 1
            published = Version(
                self._seq, feed, key, version, data, digest, table.num_rows, sign_json(manifest, played.key), now
            )
            played.versions.append(published)
        return published

    def publish_day(self, community: str, day: date, version: int | None = None) -> list[Version]:
        """Every granted feed's partition of one day (monthly feeds: that day's month)."""
        return [self.publish(community, feed, day, version) for feed in sorted(self.granted)]


class _Handler(BaseHTTPRequestHandler):
    hubs: FeedServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the tests and the bench read the district's report, not access logs

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        parts = path.split("/")
        if len(parts) < 4 or parts[1] != "c" or parts[2] not in self.hubs.communities:
            self._plain(404, b'{"detail":"not found"}')
            return
        played = self.hubs.communities[parts[2]]
        if played.slow_seconds:
            time.sleep(played.slow_seconds)
        if played.down:
            self._plain(503, b'{"detail":"unavailable"}')  # a proxy's unsigned answer
            return
        route = "/" + "/".join(parts[3:])
        if not self._authorised(played, path, query):
            self._signed(played, 401, {"detail": "the request's signature does not verify"})
            return
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        played.served += 1
        if route == "/.well-known/jwks.json":
            self._signed(played, 200, played.jwks)
        elif route == "/v1/feeds":
            self._signed(played, 200, {"feeds": [{"name": name} for name in sorted(self.hubs.granted)]})
        elif len(parts) == 7 and route.startswith("/v1/feeds/") and parts[6] == "changes":
            self._changes(played, unquote(parts[5]), params)
        elif len(parts) == 8 and route.startswith("/v1/feeds/") and parts[6] == "partitions":
            self._partition(played, unquote(parts[5]), unquote(parts[7]))
        else:
            self._signed(played, 404, {"detail": "not found"})

    def _authorised(self, played: Community, path: str, query: str) -> bool:
        """RFC 9421 verification of the consumer's request (the lean profile every client sends)."""
        try:
            signature = parse_signature(self.headers.get("Signature-Input"), self.headers.get("Signature"))
            check_window(signature, datetime.now(UTC), WINDOW)
            key = played.consumers.get(signature.key_id or "")
            if key is None or signature.label != "neuron" or not signature.nonce:
                return False
            if any(f'"{c}"' not in signature.components for c in REQUEST_COMPONENTS):
                return False
            resolve = request_components("GET", "http", self.headers.get("Host"), path, query, self.headers.get)
            verify_ed25519(key, signature, signature_base(signature, resolve))
        except Exception:  # the lean profile or the signature: either way not authorised
            return False
        with self.hubs.lock:
            if signature.nonce in played.nonces:
                return False
            played.nonces.add(signature.nonce)
        return True

    def _changes(self, played: Community, feed: str, params: dict[str, str]) -> None:
        if feed not in self.hubs.granted:
            self._signed(played, 403, {"detail": "not granted"})
            return
        since = params.get("since") or "c0"
        try:
            after = int(since[1:]) if since.startswith("c") else -1
        except ValueError:
            after = -1
        if after < 0:
            self._signed(played, 422, {"detail": "invalid cursor"})
            return
        limit = min(int(params.get("limit") or 1000), 1000)
        listed = []
        for latest in played.latest(feed, after)[:limit]:
            v = self._served(played, latest)
            listed.append(
                {
                    "id": f"p{v.seq}",
                    "href": f"/v1/feeds/{feed}/partitions/p{v.seq}",
                    "partition": v.partition_key,
                    "version": v.version,
                    "supersedes": v.version - 1 if v.version > 1 else None,
                    "rows": v.rows,
                    "sha256": v.sha256,
                    "watermark": None,
                    "published_at": v.published_at.isoformat(),
                    "policy_fingerprint": "sha256:simulated",
                    "cursor": f"c{v.seq}",
                }
            )
        following = listed[-1]["cursor"] if listed else since
        body = {"feed": feed, "changes": listed, "next": following}
        self._signed(played, 200, body, {"Neuron-Next-Cursor": str(following)})

    def _partition(self, played: Community, feed: str, partition_id: str) -> None:
        found = next((v for v in played.versions if f"p{v.seq}" == partition_id and v.feed == feed), None)
        if found is None:
            self._signed(played, 404, {"detail": "not found"})
            return
        fault = played.faults.get((feed, found.partition_key))
        found = self._served(played, found)
        data = found.data
        if fault == "tamper_manifest":
            # The hub signs bytes that are not the manifest's: the same rows, written otherwise.
            data = _rewritten(data)
        headers = {
            "Content-Type": PARQUET,
            "Neuron-Manifest": found.manifest_jws,
            "Neuron-Partition": quote(found.partition_key, safe="/="),
            "Neuron-Partition-Version": str(found.version),
        }
        tampered = fault == "tamper_body"
        self._send(played, 200, data, headers, tamper=tampered)

    def _served(self, played: Community, found: Version) -> Version:
        """The version as the hub serves it: under `foreign_rows`, a forged one it lists and signs."""
        if played.faults.get((found.feed, found.partition_key)) != "foreign_rows":
            return found
        with self.hubs.lock:
            if found.seq not in played.forged:
                played.forged[found.seq] = self._foreign(played, found)
            return played.forged[found.seq]

    def _foreign(self, played: Community, found: Version) -> Version:
        """The partition re-made with another community's rows and a valid manifest for them."""
        spec = self.hubs.feeds[found.feed]
        day = date.fromisoformat(found.partition_key.rsplit("=", 1)[1])
        table = partition_table(spec, self.hubs.granted[found.feed], "elsewhere", day, found.version)
        data = parquet(table)
        manifest = json.loads(_payload(found.manifest_jws))
        manifest |= {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "rows": table.num_rows}
        forged = Version(
            found.seq,
            found.feed,
            found.partition_key,
            found.version,
            data,
            manifest["sha256"],
            table.num_rows,
            sign_json(manifest, played.key),
            found.published_at,
        )
        return forged

    def _signed(self, played: Community, status: int, body: Any, extra: dict[str, str] | None = None) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        self._send(played, status, payload, {"Content-Type": "application/json", **(extra or {})})

    def _send(self, played: Community, status: int, body: bytes, headers: dict[str, str], tamper: bool = False) -> None:
        lines = FieldLines(list(headers.items()))
        lines["Content-Digest"] = body_digest(body)
        lines["Cache-Control"] = "no-store"
        sign_response(status, lines, self.headers.get("Signature"), played.key.kid, played.key.private)
        if tamper:
            body = body[:-1] + bytes([body[-1] ^ 0xFF])  # after signing: the digest no longer matches
        self.send_response(status)
        for name, value in lines.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client that timed out has gone
            self.wfile.write(body)

    def _plain(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _rewritten(data: bytes) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pq.read_table(pa.BufferReader(data)), buffer, compression="snappy")
    return buffer.getvalue()


def _payload(token: str) -> bytes:
    import base64

    segment = token.split(".")[1]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


__all__ = ["FAULTS", "Community", "FeedServer", "Version", "district_fields", "partition_table"]
