"""The export API application: `create_app(settings)` for tests and servers, `serve(settings)` for `neuron serve`.

Layers, outermost first: every response is signed (`SignedResponses`); /v1 requests are
authenticated and /v1 and /.well-known requests audited before their response leaves
(`AuthenticateAndAudit`); then the routes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import RequestAuthenticator
from api.deps import NOT_FOUND, Hub
from api.middleware import AuthenticateAndAudit
from api.routes import public, v1
from api.signing import SignedResponses
from neuron.settings import Settings
from privacy.keys import HubKeys
from privacy.policy import load_policies
from schemas.feeds import load_feeds


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    # Every 404, an unknown route or a feed that is not the caller's, reads the same.
    detail = NOT_FOUND if exc.status_code == 404 else exc.detail
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # FastAPI's default echoes the offending input back; say where and what, not the value.
    errors: list[dict[str, Any]] = [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", "invalid")} for error in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=422)


def create_app(settings: Settings, *, now: Callable[[], datetime] | None = None) -> FastAPI:
    """The export API for this hub; `now` (also `app.state.now`) is the clock requests are judged by."""
    keys = HubKeys.load(settings)
    app = FastAPI(
        title="Neuron Hub export API",
        version="1",
        summary="Signed, audited, incremental feeds of a community's de-identified data.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.hub = Hub(settings=settings, keys=keys, feeds=load_feeds(), policies=load_policies(settings.policies_dir))
    app.state.now = now or _utcnow
    app.include_router(public)
    app.include_router(v1)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    authenticator = RequestAuthenticator(settings.control_url, settings.api.signature_window_seconds)
    # Added last = outermost: the signer must see every response, the gate's refusals included.
    app.add_middleware(AuthenticateAndAudit, authenticator=authenticator, control_url=settings.control_url)
    app.add_middleware(SignedResponses, keys=keys)
    return app


def serve(settings: Settings) -> None:
    """Run the export API with uvicorn on `settings.api.host:port` until interrupted."""
    import uvicorn

    # No access log: it would print query strings; the audit log records every request instead.
    uvicorn.run(create_app(settings), host=settings.api.host, port=settings.api.port, access_log=False)
