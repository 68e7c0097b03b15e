"""The export API application: `create_app(settings)` for tests and servers, `serve(settings)` for `neuron serve`.

Layers, outermost first: every response is signed (`SignedResponses`); the gate refuses
/admin to consumer keys, authenticates /v1 requests, applies rate and time limits, and
audits /v1, /admin and /.well-known requests before their response leaves (`Gate`);
then the routes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import format_ngsi, format_viid, openapi  # noqa: F401  (format_*: importing registers them)
from api.alarms import alarms_router
from api.audit_writer import AuditWriter
from api.auth import RequestAuthenticator
from api.deps import NOT_FOUND, Hub
from api.docs_page import docs
from api.exports import exports
from api.lake_files import DECODED
from api.limits import MemoryBuckets, RateLimiter, RedisBuckets
from api.metrics import ApiMetrics
from api.middleware import Gate
from api.nonces import DatabaseNonces, NonceStore, RedisNonces
from api.response_signing import SignedResponses
from api.routes import public, v1
from api.transport import StrictTransport, tls_options
from api.votes import votes_router
from kernel.settings import ApiSettings, Settings
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


def _stores(settings: Settings, options: ApiSettings) -> tuple[NonceStore, RateLimiter]:
    """Nonces and buckets: in Redis when `redis_url` is set, else the control DB and memory."""
    window = timedelta(seconds=settings.api.signature_window_seconds)
    if options.redis_url:
        import redis

        client = redis.Redis.from_url(options.redis_url, socket_timeout=5)
        return RedisNonces(client, window), RedisBuckets(client)
    return DatabaseNonces(settings.control_url, window), MemoryBuckets()


def create_app(
    settings: Settings, *, now: Callable[[], datetime] | None = None, options: ApiSettings | None = None
) -> FastAPI:
    """The export API for this hub; `now` (also `app.state.now`) is the clock requests are judged by."""
    keys = HubKeys.load(settings)
    options = options or settings.api
    app = FastAPI(
        title="Neuron Hub export API",
        version="1",
        summary="Signed, audited, incremental feeds of a community's de-identified data.",
        docs_url=None,
        redoc_url=None,
    )
    metrics = ApiMetrics()
    DECODED.budget = options.decoded_cache_bytes  # one cache per process, as the files are shared
    feeds, policies = load_feeds(), load_policies(settings.policies_dir)
    app.state.hub = Hub(
        settings, keys, feeds, policies, options=options, metrics=metrics, policies_dir=settings.policies_dir
    )
    app.state.now = now or _utcnow
    for router in (public, v1, exports, alarms_router, votes_router, docs):
        app.include_router(router)
    # The console is not here: it has a listener of its own (`console_app`, issue 17), so
    # /admin on the consumers' port is an unknown path like any other (404).
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    page = settings.api.max_page_size
    limits = {"/v1/feeds/{feed}/records": page, "/v1/alarms": page, "/v1/feeds/{feed}/changes": options.max_changes}
    openapi.install(app, limits)
    nonces, limiter = _stores(settings, options)
    authenticator = RequestAuthenticator(
        settings.control_url, settings.api.signature_window_seconds, nonces, public_names=options.authorities()
    )
    app.state.authenticator = authenticator
    # Added last = outermost: the signer must see every response, the gate's refusals included.
    writer = AuditWriter(settings.control_url, after=nonces.purge if isinstance(nonces, DatabaseNonces) else None)
    app.add_middleware(
        Gate, authenticator=authenticator, writer=writer, options=options, limiter=limiter, metrics=metrics
    )
    app.add_middleware(SignedResponses, keys=keys)
    app.add_middleware(StrictTransport, max_age=options.hsts_seconds)
    return app


def create_console_app(settings: Settings, *, now: Callable[[], datetime] | None = None) -> FastAPI:
    """The admin console (under /admin) as the application of its own listener."""
    from api.admin.console import install as install_console
    from api.admin.web import NoConsumerKeys

    app = FastAPI(title="Neuron Hub console", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.now = now or _utcnow
    install_console(app, settings)
    app.add_middleware(NoConsumerKeys)
    app.add_middleware(StrictTransport, max_age=settings.api.hsts_seconds)
    return app


# How uvicorn runs the API (`serve`, the tests and the benchmark alike). No access log: it
# would print query strings; the audit log records every request instead. No Server header.
# Idle keep-alive connections are closed after 5 s, and past `limit_concurrency` open
# requests new ones get a 503 at once instead of queueing without bound.
SERVER_OPTIONS: dict[str, Any] = {
    "access_log": False,
    "server_header": False,
    "timeout_keep_alive": 5,
    "limit_concurrency": 512,
    "h11_max_incomplete_event_size": 16 * 1024,
}


def serve(settings: Settings) -> None:
    """Run the export API on `api.host:port` and the console on `api.console_host:console_port`,
    both over HTTPS unless `api.tls` is off, until interrupted."""
    import asyncio

    import uvicorn

    api = settings.api
    tls = tls_options(settings)
    servers = [
        uvicorn.Server(uvicorn.Config(create_app(settings), host=api.host, port=api.port, **SERVER_OPTIONS, **tls)),
        uvicorn.Server(
            uvicorn.Config(
                create_console_app(settings), host=api.console_host, port=api.console_port, **SERVER_OPTIONS, **tls
            )
        ),
    ]

    async def both() -> None:
        # Each server installs its own signal handlers and only the last one's sees Ctrl-C:
        # when either stops, the other is told to stop too.
        tasks = [asyncio.create_task(server.serve()) for server in servers]
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*pending)

    asyncio.run(both())
