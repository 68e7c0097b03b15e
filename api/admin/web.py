"""The console's web plumbing: who is signed in, CSRF, security headers, page rendering.

Pages are server-rendered Jinja2 (autoescaped); the only script is a static file, so the
Content-Security-Policy allows no inline script or style at all. Cookies are HttpOnly and
SameSite=Strict, and Secure whenever the request came over TLS.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.admin import i18n
from api.admin.accounts import Lockout
from api.admin.labels import Labels
from api.admin.overview import shown
from api.admin.sessions import COOKIE, Lifetime, Principal, find_session, same_token
from api.formats import json_value
from kernel.errors import Refused as RequestRefused
from kernel.settings import Settings

BASE = "/admin"
HERE = Path(__file__).parent
LOGIN_CSRF_COOKIE = "neuron_admin_login"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
templates = Jinja2Templates(directory=HERE / "templates")


@dataclass
class Console:
    """What every console route needs: the hub's settings, its clock, the account rules."""

    settings: Settings
    now: Callable[[], datetime]
    lockout: Lockout = field(default_factory=Lockout)
    lifetime: Lifetime = field(default_factory=Lifetime)


class SignInRequired(RequestRefused):
    """No live session: GETs go to the sign-in page, anything else is a 401."""


class Refused(RequestRefused):
    """A signed-in person may not do this (role), or the form's CSRF token is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # an i18n key


class SecurityHeaders:
    """Pure ASGI middleware: the console's security headers on every response it sends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in HEADERS.items() if k.encode() not in names]
                if b"cache-control" not in names:
                    # Pages hold what was shared: never kept by the browser. Static files may be.
                    static = scope["path"].startswith(BASE + "/static/")
                    extra.append((b"cache-control", b"max-age=3600" if static else b"no-store"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


class NoConsumerKeys:
    """Pure ASGI middleware: a request carrying a consumer's signature gets the console's 404.

    Consumer keys open the export API, never the console, even beside a valid session: the
    same rule the API's gate applied when the console shared its port.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and any(name in SIGNATURE_FIELDS for name, _ in scope["headers"]):
            headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"cache-control", b"no-store")]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": b"Not Found"})
            return
        await self.app(scope, receive, send)


SIGNATURE_FIELDS = (b"signature", b"signature-input")


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def language(request: Request) -> str:
    chosen = request.cookies.get(i18n.COOKIE, i18n.DEFAULT)
    return chosen if chosen in i18n.LANGUAGES else i18n.DEFAULT


def secure(request: Request) -> bool:
    """Whether the browser reached us over TLS (directly, or as the proxy told uvicorn)."""
    return request.url.scheme == "https"


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=BASE, httponly=True, samesite="strict", secure=secure(request)
    )


def principal(request: Request) -> Principal:
    """The signed-in person, or SignInRequired."""
    console = console_of(request)
    found = find_session(console.settings.control_url, request.cookies.get(COOKIE), console.now(), console.lifetime)
    if found is None:
        raise SignInRequired
    return found


async def form_of(request: Request, who: Principal, *, admin: bool) -> dict[str, Any]:
    """A POST's form, once its CSRF token is checked (and the role, for admin actions)."""
    form = await request.form()
    if not same_token(who.csrf_token, _text(form.get("csrf_token"))):
        raise Refused("refused.csrf")
    if admin and not who.is_admin:
        raise Refused("refused.role")
    return {k: _text(v) for k, v in form.items()}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def labels_of(request: Request) -> Labels:
    """Feeds, fields, consumers and values named in the reader's language (api.admin.labels)."""
    lang, settings = language(request), console_of(request).settings
    return Labels(lang, i18n.translator(lang), settings.policies_dir, settings.timezone)


def page(request: Request, template: str, who: Principal | None, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a page in the reader's language."""
    lang = language(request)
    context |= {"t": i18n.translator(lang), "lang": lang, "who": who, "base": BASE, "path": request.url.path}
    context["cell"] = cell
    zone = ZoneInfo(console_of(request).settings.timezone)
    context["local"] = lambda moment, pattern: moment.astimezone(zone).strftime(pattern)
    context["show"] = lambda value: shown(value, lang)
    context["labels"] = labels_of(request)
    return templates.TemplateResponse(request, template, context, status_code=status)


def cell(value: Any) -> str:
    """A value as the export API renders it (ISO 8601 times), empty for null."""
    if value is None:
        return ""
    return str(value) if isinstance(value, str | int | float | bool) else str(json_value(value))


def login_csrf(request: Request) -> str:
    """The sign-in form's CSRF token (double-submit: cookie and hidden field must agree)."""
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)


def back_to(target: str | None) -> str:
    """A redirect target inside the console, never elsewhere (no open redirect)."""
    if target and target.startswith(BASE) and not target.startswith("//") and "\\" not in target:
        return target
    return BASE + "/"


def redirect(target: str) -> RedirectResponse:
    return RedirectResponse(target, status_code=303)
