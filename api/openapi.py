"""What /openapi.json says beyond the routes' signatures: the RFC 9421 scheme, the response
headers every answer carries, the error bodies, and the schemas of JSON answers.

The JSON schemas document the answers without filtering them (routes return plain dicts
and are declared with `response_model=None`), and the schemathesis test checks that every
answer conforms, so the document cannot drift from what is served.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict

SIGNATURE_EXTENSION = "x-http-message-signatures"
REQUEST_LABEL, RESPONSE_LABEL = "neuron", "hub"
# What a consumer implements (docs/consumers.md walks through it with curl and openssl).
SIGNATURE_PROFILE: dict[str, Any] = {
    "standard": "RFC 9421 HTTP Message Signatures; RFC 9530 Digest Fields",
    "request": {
        "label": REQUEST_LABEL,
        "algorithm": "ed25519",
        "covered_components": ["@method", "@authority", "@path", "@query"],
        "covered_components_with_body": ["@method", "@authority", "@path", "@query", "content-digest"],
        "parameters": {
            "created": "UNIX seconds; within ±300 s of the hub's clock",
            "keyid": "the consumer's key id, as the hub registered its Ed25519 public key",
            "alg": "ed25519",
            "nonce": "a fresh random string, never sent before (replays are refused)",
        },
        "example": {
            "Signature-Input": 'neuron=("@method" "@authority" "@path" "@query");created=1796630400;'
            'keyid="district-0a1b2c3d";alg="ed25519";nonce="bm9uY2UtZm9yLXRlc3QtdmVjdG9ycw"',
            "Signature": "neuron=:<base64 of the 64-byte Ed25519 signature of the signature base>:",
        },
    },
    "response": {
        "label": RESPONSE_LABEL,
        "algorithm": "ed25519",
        "covered_components": [
            "content-digest",
            "@status",
            "content-type (when present)",
            "every Neuron-* header, sorted",
            '"signature";req (the request\'s own Signature, when the request was signed)',
        ],
        "digest": "Content-Digest: sha-256=:<base64 SHA-256 of the body>:",
        "keys": "/.well-known/jwks.json (pin its keys by their RFC 7638 thumbprints)",
    },
    "manifest": "Neuron-Manifest: compact JWS, alg Ed25519, signed by a JWKS key, over canonical JSON",
    "test_vectors": "clients/testvectors/vectors.json in the hub's repository",
}
REQUEST_SIGNATURE_HEADERS = [
    {
        "name": "Signature-Input",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": 'RFC 9421: `neuron=("@method" "@authority" "@path" "@query")` with '
        '`;created=<unix s>;keyid="<your key id>";alg="ed25519";nonce="<fresh>"` (see x-http-message-signatures).',
    },
    {
        "name": "Signature",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "RFC 9421: `neuron=:<base64 Ed25519 signature of the signature base>:`, computed per request "
        "(never a fixed value).",
    },
]
STRING = {"schema": {"type": "string"}}
SIGNED = {
    "Signature": {**STRING, "required": True, "description": "The hub's RFC 9421 signature (label `hub`, Ed25519)."},
    "Signature-Input": {**STRING, "required": True, "description": "Covered components and parameters."},
    "Content-Digest": {**STRING, "required": True, "description": "RFC 9530 SHA-256 of the body (signed)."},
}
CURSOR = {"Neuron-Next-Cursor": {**STRING, "required": True, "description": "Where to ask next (opaque)."}}
RETRY = {"Retry-After": {"schema": {"type": "integer"}, "required": True, "description": "Seconds to wait."}}


class ValidationProblem(BaseModel):
    """Where a request parameter is invalid (its value is never echoed)."""

    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """Every refusal and error: a short detail that quotes nothing the request sent."""

    detail: str | list[ValidationProblem]


class Open(BaseModel):
    """A JSON object whose documented members are present and whose others may be added."""

    model_config = ConfigDict(extra="allow")


def json_response(description: str, model: type[BaseModel], headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """A documented JSON answer."""
    return {"description": description, "model": model, "headers": {**SIGNED, **(headers or {})}}


Responses = dict[int | str, dict[str, Any]]


def answers(ok: Mapping[int, dict[str, Any]], *refusals: int) -> Responses:
    """A route's documented answers: `ok` and the refusals named."""
    out: Responses = errors(*refusals)
    for status, answer in ok.items():
        out[status] = answer
    return out


def errors(*statuses: int) -> Responses:
    """The documented refusals of a route."""
    described = {
        401: "The request is not signed by a live consumer key, or the signature is stale or replayed.",
        404: "Not found: no such thing, or not the caller's (the two read the same).",
        406: "The feed is not offered in the requested format (the detail names those it is).",
        413: "The request body is too large.",
        422: "A parameter is invalid (out of range, malformed cursor).",
        429: "Rate limit exceeded: wait Retry-After seconds.",
        503: "Timed out, or the audit log is unavailable: nothing was served.",
    }
    out: Responses = {}
    for status in statuses:
        headers = {**SIGNED, **(RETRY if status == 429 else {})}
        out[status] = {"description": described[status], "model": Problem, "headers": headers}
    return out


V1_ERRORS = (401, 404, 413, 422, 429, 503)
PUBLIC_ERRORS = (429, 503)


def install(app: FastAPI, limits: dict[str, int] | None = None) -> None:
    """Generate the document once, with the signature scheme on every /v1 operation and the
    `limit` maxima of this hub (`limits`: path -> maximum; they come from its settings)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes, description=DESCRIPTION
            )
            # OpenAPI has no security-scheme type for RFC 9421 (its apiKey would tell generated
            # clients to send a fixed value): every /v1 operation declares the two request
            # headers it needs, and `x-http-message-signatures` says, machine-readably, how
            # they are made and how every answer is verified.
            schema[SIGNATURE_EXTENSION] = SIGNATURE_PROFILE
            for path, operations in schema.get("paths", {}).items():
                for operation in operations.values():
                    operation["security"] = []
                    if path.startswith("/v1/"):
                        operation["parameters"] = [*REQUEST_SIGNATURE_HEADERS, *operation.get("parameters", [])]
                        operation[SIGNATURE_EXTENSION] = {"request": REQUEST_LABEL, "response": RESPONSE_LABEL}
                    for parameter in operation.get("parameters", []):
                        if parameter["name"] == "limit" and path in (limits or {}):
                            _set_maximum(parameter["schema"], (limits or {})[path])
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _set_maximum(schema: dict[str, Any], maximum: int) -> None:
    # An optional integer is documented as anyOf [integer, null]: bound the integer.
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "integer":
            option["maximum"] = maximum


DESCRIPTION = """\
Signed, audited, incremental feeds of a community's de-identified data.

**Requests** to `/v1` are signed by the consumer (RFC 9421): label `neuron`, `alg="ed25519"`,
the consumer's `keyid`, `created` within ±300 s of the hub's clock, a `nonce` never used before,
covering `@method`, `@authority`, `@path` and `@query` (and `content-digest` when there is a body).

**Responses**, refusals included, are signed by the hub (label `hub`) over `@status`,
`content-digest`, `content-type`, every `Neuron-*` header and the request's signature
(`"signature";req`); the keys are at `/.well-known/jwks.json`. Partitions also carry their
manifest as a JWS (`Neuron-Manifest`).
"""
