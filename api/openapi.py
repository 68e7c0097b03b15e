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

SCHEME = "rfc9421"
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
            schema.setdefault("components", {})["securitySchemes"] = {
                SCHEME: {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Signature",
                    "description": "RFC 9421 request signature (with Signature-Input), see the description.",
                }
            }
            for path, operations in schema.get("paths", {}).items():
                for operation in operations.values():
                    operation["security"] = [{SCHEME: []}] if path.startswith("/v1/") else []
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
