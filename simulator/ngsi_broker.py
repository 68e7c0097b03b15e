"""A faithful NGSI-LD context broker on loopback: what the city brain's FIWARE broker does with
what we write to it. Built from ETSI GS CIM 009 (V1.8.1 OpenAPI: batch upsert, temporal API,
clause 6.3.5 on content types and @context) and the brokers' recorded behaviour
(Orion-LD #1951 batch limit, #1518 temporal duplicates), not from the hub's client.

  POST /ngsi-ld/v1/entityOperations/upsert[?options=replace|update]
        201 + JSON array of the ids newly created, 204 when every entity existed,
        207 BatchOperationResult {"success": [...], "errors": [{"entityId", "error": ProblemDetails}]}
        when any entity failed, 400/413 for a batch over the limit, 400/415 for content-type errors
  POST /ngsi-ld/v1/temporal/entities[/]              201 new temporal entity, 204 instances added
  POST /ngsi-ld/v1/temporal/entities/{id}/attrs      204, 404 unknown entity
  GET  /ngsi-ld/v1/temporal/entities/{id}?attrs=&timerel=&timeAt=&endTimeAt=
  GET  /ngsi-ld/v1/entities/{id}, GET /ngsi-ld/v1/entities?type=
  POST /oauth2/token                                 OAuth2 client credentials (RFC 6749 §4.4)
  GET  /__peer/stats                                 the counters (not NGSI-LD: the test's window)

The temporal store keeps every instance it is given and COUNTS duplicates, the same
(tenant, entity, attribute, datasetId, observedAt) written again, rather than dropping them:
Orion-LD's TRoE stores them twice (#1518, open), so a client that replays must not.
Tenants are chosen by the `NGSILD-Tenant` header and created on first write (as Orion-LD does).

Faults: `fail_fraction` of the entities of each batch answered as InternalError in a 207
(chosen by a seeded hash of the entity and how often it was tried, so a retry may succeed),
`http_fail_every` (every K-th request answered 503), `temporal_lost_reply_every` (every K-th
temporal write is stored, then answered 503, as when a proxy drops the reply), `latency_ms`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, cast
from urllib.parse import parse_qs, unquote, urlsplit

from simulator.http_server import JsonHandler, QuietServer

BASE = "/ngsi-ld/v1"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
JSONLD_CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
ATTRIBUTE_TYPES = {
    "Property",
    "Relationship",
    "GeoProperty",
    "LanguageProperty",
    "VocabProperty",
    "JsonProperty",
    "ListProperty",
    "ListRelationship",
}
# NGSI-v2's attribute types: a v2 "normalized" body is not NGSI-LD and is refused.
V2_TYPES = {"Number", "Text", "Integer", "Float", "Boolean", "DateTime", "StructuredValue", "geo:json"}
GEOJSON_TYPES = {"Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon"}
# Characters Orion-family brokers refuse in attribute names (the spec only asks for valid
# JSON-LD terms; the city brain's broker is unknown, so the peer is as strict as Orion-LD).
FORBIDDEN_NAME = re.compile(r"[\s<>\"'=;()]")
RESERVED = {"id", "type", "@context", "scope", "createdAt", "modifiedAt"}
LINK = re.compile(r"<([^>]+)>\s*;(.*)")


@dataclass
class BrokerConfig:
    """What the broker accepts and which faults it injects."""

    max_batch: int = 1000  # Orion-LD's hard limit (maintainer, #1951)
    over_limit: Literal[413, 400] = 413
    auth: Literal["none", "bearer", "oauth2"] = "none"
    bearer_token: str = ""  # auth="bearer": the one static token accepted
    client_id: str = ""  # auth="oauth2": the client allowed to take tokens
    client_secret: str = ""
    token_ttl_seconds: float = 3600
    allow_default_context: bool = False  # application/json without a Link header (core context only)
    fail_fraction: float = 0.0
    http_fail_every: int = 0
    temporal_lost_reply_every: int = 0
    latency_ms: float = 0.0
    seed: int = 20


class Refused(Exception):
    """A request answered with a ProblemDetails body."""

    def __init__(self, status: int, kind: str, title: str, detail: str = "") -> None:
        super().__init__(title)
        self.status, self.kind, self.title, self.detail = status, kind, title, detail

    def problem(self) -> dict[str, Any]:
        return {"type": ERRORS + self.kind, "title": self.title, "detail": self.detail, "status": self.status}


@dataclass
class Instance:
    """One temporal instance of an attribute."""

    observed_at: str
    dataset_id: str | None
    value: Any


@dataclass
class BrokerState:
    """Entities and temporal instances per tenant, the counters, the issued tokens."""

    config: BrokerConfig
    lock: threading.Lock = field(default_factory=threading.Lock)
    entities: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    temporal: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # id, type, attrs
    instances: dict[tuple[str, str, str], list[Instance]] = field(default_factory=dict)
    instance_keys: Counter[tuple[str, str, str, str | None, str]] = field(default_factory=Counter)
    tokens: dict[str, float] = field(default_factory=dict)  # access token -> expiry (monotonic)
    attempts: Counter[str] = field(default_factory=Counter)  # per entity id, for fail_fraction
    stats: Counter[str] = field(default_factory=Counter)
    requests: int = 0

    def count_instance(self, tenant: str, entity_id: str, attr: str, instance: Instance) -> None:
        self.instances.setdefault((tenant, entity_id, attr), []).append(instance)
        key = (tenant, entity_id, attr, instance.dataset_id, instance.observed_at)
        self.instance_keys[key] += 1
        self.stats["temporal_instances"] += 1
        if self.instance_keys[key] > 1:
            self.stats["duplicate_instances"] += 1

    def summary(self) -> dict[str, int]:
        """The counters, with the current number of entities."""
        with self.lock:
            counters = dict.fromkeys(("batches", "upserted", "entity_errors", "over_limit", "http_503"), 0)
            counters |= dict.fromkeys(("temporal_instances", "duplicate_instances", "unauthorised"), 0)
            return {**counters, **self.stats, "entities": len(self.entities), "temporal_entities": len(self.temporal)}


def _is_uri(text: Any) -> bool:
    # An NGSI-LD id is a URI (RFC 3986): a scheme, a colon, and no whitespace.
    return isinstance(text, str) and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:\S+", text) is not None


def _is_datetime(text: Any) -> bool:
    if not isinstance(text, str) or "T" not in text:
        return False
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return moment.tzinfo is not None


def _check_geojson(name: str, value: Any) -> None:
    if not isinstance(value, dict) or value.get("type") not in GEOJSON_TYPES:
        raise Refused(400, "BadRequestData", f"attribute {name} is not a GeoJSON geometry")
    if value["type"] == "Point":
        point = value.get("coordinates")
        if not (isinstance(point, list) and len(point) in (2, 3) and all(isinstance(c, int | float) for c in point)):
            raise Refused(400, "BadRequestData", f"attribute {name} has invalid Point coordinates")
        # GeoJSON is [longitude, latitude]: a latitude past ±90 means the order was swapped.
        if not (-180 <= point[0] <= 180 and -90 <= point[1] <= 90):
            raise Refused(400, "BadRequestData", f"attribute {name}: coordinates out of range (order is lon, lat)")


def _check_attribute(name: str, value: Any) -> list[tuple[str | None, str, Any]]:
    """Validate one attribute; the temporal instances it carries: (datasetId, observedAt, value)."""
    if FORBIDDEN_NAME.search(name):
        raise Refused(400, "BadRequestData", "invalid attribute name")
    values = value if isinstance(value, list) and value and all(isinstance(v, dict) for v in value) else [value]
    carried: list[tuple[str | None, str, Any]] = []
    for item in values:
        if not isinstance(item, dict):
            continue  # concise: a plain value stands for a Property
        kind = item.get("type")
        if kind in V2_TYPES:
            raise Refused(400, "BadRequestData", f"attribute {name} has an NGSI-v2 type, not an NGSI-LD one")
        if kind in GEOJSON_TYPES:  # concise GeoProperty
            _check_geojson(name, item)
            continue
        if kind is None and "value" not in item and "object" not in item:
            continue  # a JSON object value (concise Property)
        if kind == "Relationship" and not _is_uri(item.get("object")):
            raise Refused(400, "BadRequestData", f"relationship {name} has no URI object")
        if kind in ("Property", "GeoProperty", None) and "value" not in item and "object" not in item:
            raise Refused(400, "BadRequestData", f"attribute {name} has no value")
        if kind == "GeoProperty":
            _check_geojson(name, item.get("value"))
        if kind is not None and kind not in ATTRIBUTE_TYPES:
            raise Refused(400, "BadRequestData", f"attribute {name} has an unknown type")
        dataset = item.get("datasetId")
        if dataset is not None and not _is_uri(dataset):
            raise Refused(400, "BadRequestData", f"attribute {name} has a datasetId that is not a URI")
        if "observedAt" in item:
            if not _is_datetime(item["observedAt"]):
                raise Refused(400, "BadRequestData", f"attribute {name} has an invalid observedAt")
            carried.append((dataset, item["observedAt"], item.get("value", item.get("object"))))
    return carried


def check_entity(entity: Any, needs_context: bool) -> dict[str, list[tuple[str | None, str, Any]]]:
    """Validate an entity of a write; per attribute, the temporal instances it carries."""
    if not isinstance(entity, dict):
        raise Refused(400, "BadRequestData", "an entity must be a JSON object")
    if not _is_uri(entity.get("id")):
        raise Refused(400, "BadRequestData", "entity id is missing or not a URI")
    kind = entity.get("type")
    if not (isinstance(kind, str) and kind) and not (isinstance(kind, list) and kind):
        raise Refused(400, "BadRequestData", "entity type is missing")
    if needs_context and "@context" not in entity:
        raise Refused(400, "BadRequestData", "application/ld+json: the entity has no @context")
    if not needs_context and "@context" in entity:
        raise Refused(400, "BadRequestData", "application/json: @context must come in the Link header")
    carried = {}
    for name, value in entity.items():
        if name in RESERVED:
            continue
        found = _check_attribute(name, value)
        if found:
            carried[name] = found
    return carried


class _Server(QuietServer):
    state: BrokerState


class _Handler(JsonHandler):
    server_version = "NGSI-LD-peer/1.8"

    # --- plumbing ---------------------------------------------------------------------------

    @property
    def state(self) -> BrokerState:
        return cast(_Server, self.server).state

    def _reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _problem(self, refused: Refused, headers: dict[str, str] | None = None) -> None:
        self._reply(refused.status, refused.problem(), headers)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _tenant(self) -> str:
        return self.headers.get("NGSILD-Tenant") or ""

    def _fault(self) -> bool:
        """Count the request; answer an injected 503 if its turn has come."""
        config = self.state.config
        with self.state.lock:
            self.state.requests += 1
            n = self.state.requests
        if config.latency_ms:
            time.sleep(config.latency_ms / 1000)
        if config.http_fail_every and n % config.http_fail_every == 0:
            with self.state.lock:
                self.state.stats["http_503"] += 1
            self._problem(Refused(503, "InternalError", "broker overloaded"), {"Retry-After": "0"})
            return True
        return False

    def _authorised(self) -> bool:
        config = self.state.config
        if config.auth == "none":
            return True
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        token = token.strip()
        ok = False
        if scheme.lower() == "bearer" and token:
            if config.auth == "bearer":
                ok = hmac.compare_digest(token.encode(), config.bearer_token.encode())
            else:
                with self.state.lock:
                    expiry = self.state.tokens.get(token)
                ok = expiry is not None and expiry > time.monotonic()
        if not ok:
            with self.state.lock:
                self.state.stats["unauthorised"] += 1
            # RFC 6750 §3: the challenge; NGSI-LD defines no error type for authentication.
            self._reply(
                401,
                {"type": ERRORS + "InvalidRequest", "title": "unauthorised", "status": 401},
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return ok

    def _payload(self) -> tuple[Any, bool]:
        """The JSON body of a write and whether entities must carry @context (clause 6.3.5)."""
        raw = self._body()  # read first: a refused request must not leave its body on the connection
        media = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        link = self.headers.get("Link")
        if media == "application/ld+json":
            if link:
                raise Refused(400, "BadRequestData", "ld+json with a Link header: @context goes in the body")
            needs_context = True
        elif media == "application/json":
            if link:
                match = LINK.match(link)
                if not match or JSONLD_CONTEXT_REL not in match.group(2):
                    raise Refused(400, "BadRequestData", "the Link header is not a JSON-LD context link")
            elif not self.state.config.allow_default_context:
                # The spec would fall back to the core context; the city brain would then not
                # understand Smart Data Models' terms, so this peer refuses (as agreed in the doc).
                raise Refused(400, "LdContextNotAvailable", "application/json without a JSON-LD Link header")
            needs_context = False
        else:
            raise Refused(415, "InvalidRequest", "unsupported media type (application/json or application/ld+json)")
        try:
            return json.loads(raw or b"null"), needs_context
        except (ValueError, UnicodeDecodeError):
            raise Refused(400, "InvalidRequest", "the body is not valid JSON") from None

    # --- routing ----------------------------------------------------------------------------

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        try:
            if url.path == "/oauth2/token":
                self._token()
                return
            if self._fault() or not self._authorised():
                self._body()  # drain, so keep-alive survives
                return
            params = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path == f"{BASE}/entityOperations/upsert":
                self._upsert(params.get("options", "replace"))
            elif url.path.rstrip("/") == f"{BASE}/temporal/entities":
                self._temporal_create()
            elif url.path.startswith(f"{BASE}/temporal/entities/") and url.path.endswith("/attrs"):
                entity_id = unquote(url.path[len(f"{BASE}/temporal/entities/") : -len("/attrs")])
                self._temporal_add(entity_id)
            else:
                self._body()
                self._problem(Refused(404, "ResourceNotFound", "no such endpoint"))
        except Refused as refused:
            self._problem(refused)
        except Exception:
            self._problem(Refused(500, "InternalError", "internal error"))

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        try:
            if url.path == "/__peer/stats":
                self._reply(200, self.state.summary())
                return
            if not self._authorised():
                return
            params = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path.startswith(f"{BASE}/temporal/entities/"):
                self._temporal_get(unquote(url.path[len(f"{BASE}/temporal/entities/") :]), params)
            elif url.path.startswith(f"{BASE}/entities/"):
                self._entity_get(unquote(url.path[len(f"{BASE}/entities/") :]))
            elif url.path == f"{BASE}/entities":
                self._entities_get(params)
            else:
                self._problem(Refused(404, "ResourceNotFound", "no such endpoint"))
        except Refused as refused:
            self._problem(refused)

    # --- OAuth2 -----------------------------------------------------------------------------

    def _token(self) -> None:
        """RFC 6749 §4.4: client credentials in HTTP Basic (§2.3.1) or in the form body."""
        config = self.state.config
        form = {k: v[-1] for k, v in parse_qs(self._body().decode("utf-8", "replace")).items()}
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        scheme, _, encoded = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(encoded.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user = password = ""
            client_id, secret = unquote(user), unquote(password)
        if form.get("grant_type") != "client_credentials":
            self._reply(400, {"error": "unsupported_grant_type"})
            return
        good = config.auth == "oauth2" and hmac.compare_digest(
            f"{client_id}\x00{secret}".encode(), f"{config.client_id}\x00{config.client_secret}".encode()
        )
        if not good:
            self._reply(401, {"error": "invalid_client"}, {"WWW-Authenticate": 'Basic realm="token"'})
            return
        token = secrets.token_urlsafe(24)
        with self.state.lock:
            self.state.tokens[token] = time.monotonic() + config.token_ttl_seconds
            self.state.stats["tokens_issued"] += 1
        body = {"access_token": token, "token_type": "Bearer", "expires_in": int(config.token_ttl_seconds)}
        self._reply(200, body, {"Cache-Control": "no-store"})

    # --- batch upsert -----------------------------------------------------------------------

    def _fails(self, entity_id: str) -> bool:
        """The injected per-entity failure: a seeded hash of the entity and its attempt number."""
        fraction = self.state.config.fail_fraction
        if not fraction:
            return False
        with self.state.lock:
            self.state.attempts[entity_id] += 1
            attempt = self.state.attempts[entity_id]
        digest = hashlib.sha256(f"{self.state.config.seed}:{entity_id}:{attempt}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < fraction

    def _upsert(self, option: str) -> None:
        if option not in ("replace", "update"):
            self._payload()
            raise Refused(400, "BadRequestData", "options must be replace or update")
        entities, needs_context = self._payload()
        if not isinstance(entities, list) or not entities:
            raise Refused(400, "BadRequestData", "the body must be a non-empty JSON array of entities")
        config = self.state.config
        if len(entities) > config.max_batch:
            with self.state.lock:
                self.state.stats["over_limit"] += 1
            kind = "BadRequestData" if config.over_limit == 400 else "InvalidRequest"
            raise Refused(config.over_limit, kind, f"more than {config.max_batch} entities in one batch")
        tenant = self._tenant()
        # The same id twice in one batch: the last one counts (what Orion-LD does; the spec is silent).
        last = {e["id"]: i for i, e in enumerate(entities) if isinstance(e, dict) and isinstance(e.get("id"), str)}
        success: list[str] = []
        errors: list[dict[str, Any]] = []
        created: list[str] = []
        for index, entity in enumerate(entities):
            entity_id = entity.get("id") if isinstance(entity, dict) else None
            if isinstance(entity_id, str) and last.get(entity_id) != index:
                continue
            try:
                carried = check_entity(entity, needs_context)
                if self._fails(entity_id or ""):
                    raise Refused(500, "InternalError", "entity write failed")
            except Refused as refused:
                errors.append({"entityId": entity_id or "", "error": refused.problem()})
                continue
            assert isinstance(entity_id, str)
            with self.state.lock:
                key = (tenant, entity_id)
                current = self.state.entities.get(key)
                body = {k: v for k, v in entity.items() if k != "@context"}
                if current is None:
                    created.append(entity_id)
                    self.state.entities[key] = body
                elif option == "update":
                    current.update(body)
                else:
                    self.state.entities[key] = body
                # Brokers with a temporal store also record history from ordinary writes.
                for name, found in carried.items():
                    for dataset, observed, value in found:
                        self.state.count_instance(tenant, entity_id, name, Instance(observed, dataset, value))
                self.state.stats["upserted"] += 1
            success.append(entity_id)
        with self.state.lock:
            self.state.stats["batches"] += 1
            self.state.stats["entity_errors"] += len(errors)
        if errors:
            self._reply(207, {"success": success, "errors": errors})
        elif created:
            self._reply(201, created)
        else:
            self._reply(204)

    # --- temporal ---------------------------------------------------------------------------

    def _lost_reply(self) -> bool:
        every = self.state.config.temporal_lost_reply_every
        if not every:
            return False
        with self.state.lock:
            self.state.stats["temporal_writes"] += 1
            n = self.state.stats["temporal_writes"]
        return n % every == 0

    def _instances(self, entity_id: str, body: dict[str, Any]) -> list[tuple[str, Instance]]:
        found: list[tuple[str, Instance]] = []
        for name, value in body.items():
            if name in RESERVED:
                continue
            items = value if isinstance(value, list) else [value]
            for item in items:
                if not isinstance(item, dict) or "observedAt" not in item:
                    # The temporal representation needs an instance's time (temporal property: observedAt).
                    raise Refused(400, "BadRequestData", f"attribute {name}: an instance has no observedAt")
            for dataset, observed, inner in _check_attribute(name, items):
                found.append((name, Instance(observed, dataset, inner)))
        return found

    def _temporal_create(self) -> None:
        body, needs_context = self._payload()
        check_entity(body, needs_context)
        instances = self._instances(body["id"], body)
        tenant = self._tenant()
        with self.state.lock:
            key = (tenant, body["id"])
            is_new = key not in self.state.temporal
            if is_new:
                self.state.temporal[key] = {"id": body["id"], "type": body["type"]}
            for name, instance in instances:
                self.state.count_instance(tenant, body["id"], name, instance)
        if self._lost_reply():
            self._problem(Refused(503, "InternalError", "gateway timeout"))
            return
        self._reply(201 if is_new else 204, headers={"Location": f"{BASE}/temporal/entities/{body['id']}"})

    def _temporal_add(self, entity_id: str) -> None:
        body, needs_context = self._payload()
        if not isinstance(body, dict):
            raise Refused(400, "BadRequestData", "the body must be a JSON object of attributes")
        if needs_context and "@context" not in body:
            raise Refused(400, "BadRequestData", "application/ld+json: the body has no @context")
        tenant = self._tenant()
        with self.state.lock:
            known = (tenant, entity_id) in self.state.temporal
        if not known:
            raise Refused(404, "ResourceNotFound", "no such temporal entity")
        instances = self._instances(entity_id, body)
        with self.state.lock:
            for name, instance in instances:
                self.state.count_instance(tenant, entity_id, name, instance)
        if self._lost_reply():
            self._problem(Refused(503, "InternalError", "gateway timeout"))
            return
        self._reply(204)

    def _temporal_get(self, entity_id: str, params: dict[str, str]) -> None:
        tenant = self._tenant()
        with self.state.lock:
            head = self.state.temporal.get((tenant, entity_id))
            if head is None:
                raise Refused(404, "ResourceNotFound", "no such temporal entity")
            wanted = set(params["attrs"].split(",")) if params.get("attrs") else None
            out: dict[str, Any] = dict(head)
            for (t, e, name), items in self.state.instances.items():
                if t != tenant or e != entity_id or (wanted is not None and name not in wanted):
                    continue
                chosen = [i for i in items if _in_time(i.observed_at, params)]
                if chosen:
                    out[name] = [_instance_json(i) for i in chosen]
        self._reply(200, out)

    def _entity_get(self, entity_id: str) -> None:
        with self.state.lock:
            entity = self.state.entities.get((self._tenant(), entity_id))
        if entity is None:
            raise Refused(404, "ResourceNotFound", "no such entity")
        self._reply(200, entity)

    def _entities_get(self, params: dict[str, str]) -> None:
        tenant, kind = self._tenant(), params.get("type")
        limit = min(int(params.get("limit", "20")), 1000)
        with self.state.lock:
            found = [e for (t, _), e in self.state.entities.items() if t == tenant and (not kind or e["type"] == kind)]
        self._reply(200, found[:limit], {"NGSILD-Results-Count": str(len(found))})


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _in_time(observed: str, params: dict[str, str]) -> bool:
    relation = params.get("timerel")
    if not relation:
        return True
    at = _moment(params["timeAt"])
    moment = _moment(observed)
    if relation == "before":
        return moment < at
    if relation == "after":
        return moment > at
    if relation == "between":
        return at <= moment < _moment(params["endTimeAt"])
    raise Refused(400, "BadRequestData", "timerel must be before, after or between")


def _instance_json(instance: Instance) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Property", "value": instance.value, "observedAt": instance.observed_at}
    if instance.dataset_id:
        out["datasetId"] = instance.dataset_id
    return out


class RunningBroker:
    """A started broker: its URL, its state (for tests and the benchmark), how to stop it."""

    def __init__(self, httpd: _Server, thread: threading.Thread) -> None:
        self._httpd, self._thread = httpd, thread
        host, self.port = httpd.server_address[:2]
        self.url = f"http://{host!s}:{self.port}"
        self.state = httpd.state
        self._stopped = False

    def stats(self) -> dict[str, int]:
        return self.state.summary()

    def duplicate_instances(self) -> int:
        return self.state.summary().get("duplicate_instances", 0)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RunningBroker:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def start_broker(config: BrokerConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> RunningBroker:
    """Serve an NGSI-LD broker on host:port (0: a free port) in a daemon thread."""
    httpd = _Server((host, port), _Handler)
    httpd.state = BrokerState(config or BrokerConfig())
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="ngsi-ld-peer")
    thread.daemon = True
    thread.start()
    return RunningBroker(httpd, thread)


def main() -> None:
    """`python -m simulator.ngsi_broker [--port N] [--max-batch N] [--fail-fraction F] ...` until Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-batch", type=int, default=1000)
    parser.add_argument("--over-limit", type=int, choices=(413, 400), default=413)
    parser.add_argument("--fail-fraction", type=float, default=0.0)
    parser.add_argument("--http-fail-every", type=int, default=0)
    parser.add_argument("--temporal-lost-reply-every", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--bearer-token", default="")
    args = parser.parse_args()
    config = BrokerConfig(
        max_batch=args.max_batch,
        over_limit=args.over_limit,
        fail_fraction=args.fail_fraction,
        http_fail_every=args.http_fail_every,
        temporal_lost_reply_every=args.temporal_lost_reply_every,
        latency_ms=args.latency_ms,
        auth="bearer" if args.bearer_token else "none",
        bearer_token=args.bearer_token,
    )
    broker = start_broker(config, port=args.port)
    print(f"ngsi-ld peer on {broker.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stats = broker.stats()
        print(
            f"ngsi-ld peer: {stats.get('entities', 0)} entities, {stats.get('temporal_instances', 0)} temporal "
            f"instances, {stats.get('duplicate_instances', 0)} duplicate instances"
        )
        broker.stop()


if __name__ == "__main__":
    main()
