"""Mount the console on the export API: `install(app, settings)` (one line in create_app).

The console is an application of its own under /admin, with its own error pages and
security headers; it still sits behind the API's gate, which refuses any request that
carries a consumer's signature, audits every request and signs every response.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError

from api.admin import audit_pages, policies
from api.admin.routes import refused_page, router, sign_in_first
from api.admin.web import BASE, HERE, Console, Refused, SecurityHeaders, SignInRequired
from kernel.settings import Settings
from privacy.policy import load_policies

log = logging.getLogger(__name__)


def console_app(settings: Settings, now: Callable[[], datetime]) -> FastAPI:
    """The console as an ASGI application, judging sessions by `now`."""
    app = FastAPI(title="Neuron Hub console", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.console = Console(settings, now)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
    app.include_router(audit_pages.router)  # the audit log, monthly, reports and receipts pages
    app.add_exception_handler(Refused, refused_page)
    app.add_exception_handler(SignInRequired, sign_in_first)
    app.add_middleware(SecurityHeaders)
    return app


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the console at /admin of `app`, on the app's clock (`app.state.now`), and note
    the sharing policies in force at start-up in the policy history (seen by `cli`)."""
    app.mount(BASE, console_app(settings, lambda: app.state.now()))
    try:
        policies.record_versions(settings.control_url, load_policies(settings.policies_dir), "cli", datetime.now(UTC))
    except SQLAlchemyError as exc:  # a control DB not migrated yet: the policies page records them later
        log.warning("policy versions not recorded at start-up (%s)", type(exc).__name__)
