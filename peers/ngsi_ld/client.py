"""One consumer's context broker over HTTP: batch upsert, temporal writes and reads.

Each call is one request; what to retry is decided by the caller (peers/ngsi_ld/batch.py) from
what is returned here: per-entity results of a batch, or an exception that says whether the
whole request may be tried again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from kernel.errors import FatalError, RetriableError
from kernel.push_settings import NgsiLdPush
from peers.ngsi_ld.auth import BrokerAuthError, Credentials

Entity = dict[str, Any]
API = "ngsi-ld/v1"
UPSERT_PATH = f"/{API}/entityOperations/upsert"
TEMPORAL_PATH = f"/{API}/temporal/entities"
JSONLD_CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
# Error types worth trying again: the broker's own failure, not the entity's content. Ambiguous
# in the standard: it lists the error types but says nothing of which are transient. Chosen:
# InternalError (Orion-LD's "mongocEntitiesUpsert failed" under load, #1269), LdContextNotAvailable
# (the broker could not fetch the @context: a network matter) and any 5xx status; everything else
# (BadRequestData, AlreadyExists, OperationNotSupported, …) is about the entity: a dead letter.
TRANSIENT_ERRORS = {"InternalError", "LdContextNotAvailable"}


class BrokerRefused(FatalError):
    """The broker refused a whole request that retrying will not mend (the message says why)."""

    def __init__(self, message: str, status: int = 0, kind: str = "") -> None:
        super().__init__(message)
        self.status, self.kind = status, kind


class BatchTooLarge(BrokerRefused):
    """The broker's batch limit is smaller than our chunk size (413, or a 400 saying so)."""


@dataclass(frozen=True)
class EntityError:
    """Why the broker did not take one entity: the ProblemDetails type (short) and status."""

    entity_id: str
    kind: str
    status: int
    title: str

    @property
    def transient(self) -> bool:
        return self.kind in TRANSIENT_ERRORS or self.status >= 500


@dataclass
class BatchResult:
    """What the broker said about each entity of one batch request."""

    status: int
    succeeded: list[str] = field(default_factory=list)
    errors: list[EntityError] = field(default_factory=list)
    body_digest: str = ""


def problem_kind(problem: Any) -> str:
    """The short name of a ProblemDetails `type` (`.../errors/InternalError` → `InternalError`)."""
    kind = problem.get("type", "") if isinstance(problem, dict) else ""
    return str(kind).rsplit("/", 1)[-1] or "Unknown"


def parse_batch(status: int, body: Any, sent: list[str]) -> BatchResult:
    """The per-entity results of an upsert answer.

    201 (an array of the ids created) and 204 mean every entity was taken. 207 carries a
    BatchOperationResult: `success` (ids) and `errors` (entityId + ProblemDetails); older
    versions of the API answered 200 with `error` (singular), accepted too. An entity the
    body names in neither list is treated as not taken, transiently (the spec requires both
    lists to be complete, but Orion-LD before PR #1958 silently left out entities past its
    lookup limit): it is sent again rather than assumed stored.
    """
    result = BatchResult(status)
    if status in (201, 204):
        result.succeeded = list(sent)
        return result
    body = body if isinstance(body, dict) else {}
    taken = {str(i) for i in body.get("success") or [] if isinstance(i, str)}
    failed: dict[str, EntityError] = {}
    for item in body.get("errors") or body.get("error") or []:
        if not isinstance(item, dict):
            continue
        problem = item.get("error") or {}
        entity_id = str(item.get("entityId", ""))
        status_code = int(problem.get("status") or 0) if isinstance(problem, dict) else 0
        title = str(problem.get("title", "")) if isinstance(problem, dict) else ""
        failed[entity_id] = EntityError(entity_id, problem_kind(problem), status_code, title[:200])
    for entity_id in sent:
        if entity_id in failed:
            result.errors.append(failed[entity_id])
        elif entity_id in taken:
            result.succeeded.append(entity_id)
        else:
            result.errors.append(EntityError(entity_id, "NotReported", 0, "not named in the batch result"))
    return result


class BrokerClient:
    """HTTP to one consumer's broker, with its tenant, @context rule and credentials."""

    def __init__(self, push: NgsiLdPush, credentials: Credentials | None = None) -> None:
        self.push = push
        self.base = push.broker_url.rstrip("/")
        self.http = requests.Session()
        self.credentials = credentials or Credentials(push, self.http)
        self.requests = 0

    # --- bodies -------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {"Content-Type": self.push.content_type, "Accept": "application/json"}
        if self.push.tenant:
            headers["NGSILD-Tenant"] = self.push.tenant
        if self.push.content_type == "application/json":
            link = f'<{self.push.context[0]}>; rel="{JSONLD_CONTEXT_REL}"; type="application/ld+json"'
            headers["Link"] = link
        return headers

    def framed(self, entity: Entity) -> Entity:
        """The entity as this broker takes it: with the agreed @context in the body
        (application/ld+json), or without any (application/json: the Link header carries it)."""
        body = {k: v for k, v in entity.items() if k != "@context"}
        if self.push.content_type == "application/json":
            return body
        context = self.push.context or entity.get("@context")
        if context:
            body["@context"] = context[0] if isinstance(context, list) and len(context) == 1 else context
        return body

    # --- requests -----------------------------------------------------------------------------

    def _post(self, path: str, data: bytes, params: dict[str, str] | None = None) -> requests.Response:
        for attempt in (1, 2):
            headers = {**self._headers(), **self.credentials.headers()}
            self.requests += 1
            try:
                answer = self.http.post(
                    self.base + path, data=data, params=params, headers=headers, timeout=self.push.timeout_seconds
                )
            except requests.RequestException as exc:
                raise RetriableError(f"push {self.push.name}: broker unreachable ({type(exc).__name__})") from None
            if answer.status_code == 401 and attempt == 1 and self.credentials.renew():
                continue  # a lapsed or revoked token: one more try with a fresh one
            return _checked(answer, self.push.name)
        raise AssertionError("unreachable")

    def upsert(self, entities: list[Entity]) -> BatchResult:
        """One batch upsert; the per-entity results (RetriableError/BrokerRefused for the whole)."""
        data = json.dumps([self.framed(e) for e in entities], ensure_ascii=False, separators=(",", ":")).encode()
        answer = self._post(UPSERT_PATH, data, {"options": self.push.upsert_options})
        body = answer.json() if answer.content and answer.status_code in (200, 207) else None
        result = parse_batch(answer.status_code, body, [str(e["id"]) for e in entities])
        result.body_digest = "sha-256:" + hashlib.sha256(data).hexdigest()
        return result

    def temporal_write(self, entity_id: str, entity_type: str, attrs: dict[str, list[Entity]], context: Any) -> str:
        """Add instances to an entity's temporal representation (created if new: 201, else 204).

        POST /temporal/entities is "create or update temporal representation" in the V1.8.1 API, so
        one call serves the first write and every later one (the /attrs form would need to know
        whether the broker has the entity yet); the digest of the body sent is returned."""
        body: Entity = {"id": entity_id, "type": entity_type, **attrs}
        if context:
            body["@context"] = context
        data = json.dumps(self.framed(body), ensure_ascii=False, separators=(",", ":")).encode()
        self._post(TEMPORAL_PATH, data)
        return "sha-256:" + hashlib.sha256(data).hexdigest()

    def temporal_observed(self, entity_id: str, attrs: list[str], start: str, end: str) -> set[tuple[str, str]]:
        """(attribute, observedAt) of the instances the broker holds in [start, end): what an
        unconfirmed write may already have stored."""
        params = {"attrs": ",".join(attrs), "timerel": "between", "timeAt": start, "endTimeAt": end}
        headers = {k: v for k, v in self._headers().items() if k != "Content-Type"}
        if self.push.content_type == "application/ld+json" and self.push.context:
            # GET takes its @context from a Link header only (clause 6.3.5).
            headers["Link"] = f'<{self.push.context[0]}>; rel="{JSONLD_CONTEXT_REL}"; type="application/ld+json"'
        url = f"{self.base}{TEMPORAL_PATH}/{quote(entity_id, safe=':')}"
        self.requests += 1
        try:
            answer = self.http.get(
                url, params=params, headers={**headers, **self.credentials.headers()}, timeout=self.push.timeout_seconds
            )
        except requests.RequestException as exc:
            raise RetriableError(f"push {self.push.name}: broker unreachable ({type(exc).__name__})") from None
        if answer.status_code == 404:
            return set()
        body = _checked(answer, self.push.name).json()
        found: set[tuple[str, str]] = set()
        for name, value in body.items():
            for instance in value if isinstance(value, list) else [value]:
                if isinstance(instance, dict) and "observedAt" in instance:
                    found.add((name, str(instance["observedAt"])))
        return found


def _checked(answer: requests.Response, name: str) -> requests.Response:
    """The answer if it is a success or a 207; otherwise the error that says what to do."""
    status = answer.status_code
    if status < 300 or status == 207:
        return answer
    try:
        problem = answer.json()
    except ValueError:
        problem = {}
    kind = problem_kind(problem)
    if status >= 500 or status == 429:
        raise RetriableError(f"push {name}: broker answered {status} {kind}")
    if status in (401, 403):
        raise BrokerAuthError(f"push {name}: the broker refused our credentials ({status}); check push auth")
    # Past the batch limit a broker answers 413, or 400 (the spec names no code for it).
    if status == 413 or (status == 400 and "batch" in str(problem.get("title", "")).lower()):
        raise BatchTooLarge(f"push {name}: the broker's batch limit is below the chunk size ({status})", status, kind)
    raise BrokerRefused(f"push {name}: broker refused the request ({status} {kind})", status, kind)
