"""The console's pages and its two admin actions (revoke a consumer, register a key).

Every page needs a live session (`principal`); every POST also needs the session's CSRF
token, and an admin action the admin role. Console actions are appended to the audit log
under `console:<name>`, in the same chain as everything shared.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.admin import i18n, overview, pending, policies, shared
from api.admin.accounts import check_password
from api.admin.charts import bar_chart
from api.admin.sessions import COOKIE, close_session, open_session, same_token
from api.admin.web import (
    BASE,
    LOGIN_CSRF_COOKIE,
    Refused,
    SignInRequired,
    back_to,
    console_of,
    form_of,
    labels_of,
    language,
    login_csrf,
    page,
    principal,
    redirect,
    set_cookie,
)
from kernel.errors import NeuronError
from schemas.feeds import load_feeds
from warehouse.audit import append_audit
from warehouse.control import session_scope
from warehouse.push_dead_letters import request_resend
from warehouse.quality_rules import period

router = APIRouter()


def _audit(request: Request, actor: str, action: str, outcome: str, detail: dict[str, Any] | None = None) -> None:
    console = console_of(request)
    with session_scope(console.settings.control_url) as session:
        append_audit(session, actor=actor, action=action, outcome=outcome, detail=detail, at=console.now())


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None, failed: bool = False) -> Response:
    token = login_csrf(request)
    response = page(request, "login.html", None, csrf=token, next=back_to(next), failed=failed)
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    given = {k: v for k, v in form.items() if isinstance(v, str)}
    if not same_token(request.cookies.get(LOGIN_CSRF_COOKIE) or "", given.get("csrf_token")):
        raise Refused("refused.csrf")
    console = console_of(request)
    name, now = given.get("name", "").strip(), console.now()
    user = await run_in_threadpool(
        check_password, console.settings.control_url, name, given.get("password", ""), now, console.lockout
    )
    if user is None:
        await run_in_threadpool(_audit, request, "console", "console_sign_in", "refused")
        return redirect(f"{BASE}/login?failed=1")
    # A new session at every sign-in (never one the browser brought: no session fixation).
    await run_in_threadpool(close_session, console.settings.control_url, request.cookies.get(COOKIE))
    token = await run_in_threadpool(open_session, console.settings.control_url, user.name, now, console.lifetime)
    await run_in_threadpool(_audit, request, f"console:{user.name}", "console_sign_in", "ok")
    response = redirect(back_to(given.get("next")))
    set_cookie(request, response, COOKIE, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=BASE)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    who = await run_in_threadpool(principal, request)
    await form_of(request, who, admin=False)
    await run_in_threadpool(close_session, console_of(request).settings.control_url, request.cookies.get(COOKIE))
    response = redirect(f"{BASE}/login")
    response.delete_cookie(COOKIE, path=BASE)
    return response


@router.get("/lang/{code}")
def switch_language(request: Request, code: str, next: str | None = None) -> Response:
    response = redirect(back_to(next))
    set_cookie(request, response, i18n.COOKIE, code if code in i18n.LANGUAGES else i18n.DEFAULT, 365 * 86400)
    return response


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request) -> Response:
    who = principal(request)
    console = console_of(request)
    settings, t, labels = console.settings, i18n.translator(language(request)), labels_of(request)
    # One report for the page: its day's counts and states are the CLI's and the catalog's.
    now = console.now()
    report = overview.day_report(settings, now)
    today = overview.today(settings, now, report)
    alarms = overview.alarms(settings)
    quality = overview.quality(settings, now, report)
    from api.audit_export import cached_verify_audit

    charts = {
        "in": bar_chart(
            t("overview.in"), [(t(f"system.{s}"), n) for s, n in today.rows_in_by_system.items()], t("common.none")
        ),
        "out": bar_chart(
            t("overview.out"),
            [(labels.consumer(c), n) for c, n in today.rows_out_by_consumer.items()],
            t("common.none"),
        ),
        "out_feed": bar_chart(
            t("overview.out_feed"), [(labels.feed(f), n) for f, n in today.rows_out_by_feed.items()], t("common.none")
        ),
    }
    return page(
        request,
        "overview.html",
        who,
        today=today,
        charts=charts,
        alarms=alarms,
        open_alarms=overview.open_alarms(alarms),
        quality=quality,
        chain=cached_verify_audit(settings),
    )


@router.get("/shared", response_class=HTMLResponse)
def shared_page(
    request: Request,
    consumer: str | None = None,
    feed: str | None = None,
    day_from: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    day_to: Annotated[str | None, Query(alias="to", max_length=10)] = None,
    page_no: Annotated[int, Query(alias="page", ge=0, le=100_000)] = 0,
) -> Response:
    who = principal(request)
    settings = console_of(request).settings
    wanted = shared.ExportFilter(consumer or None, feed or None, _day(day_from), _day(day_to), page_no)
    exports, more = shared.list_exports(settings, wanted)
    consumers, feeds = shared.export_choices(settings)
    versions = policies.known_versions(settings.control_url)
    return page(
        request,
        "shared.html",
        who,
        exports=exports,
        more=more,
        wanted=wanted,
        consumers=consumers,
        feeds=feeds,
        versions=versions,
    )


def _day(text: str | None) -> date | None:
    """A date filter from the form: empty is no filter (the form sends empty fields)."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise HTTPException(422, "dates are YYYY-MM-DD") from None


@router.get("/shared/{seq}", response_class=HTMLResponse)
def export_page(request: Request, seq: int, rows_page: Annotated[int, Query(ge=0, le=100_000)] = 0) -> Response:
    who = principal(request)
    settings = console_of(request).settings
    found = shared.find_export(settings, seq)
    if found is None:
        return page(request, "missing.html", who, status=404)
    rows = shared.export_rows(settings, found, load_feeds().get(found.feed), rows_page)
    return page(request, "export.html", who, export=found, result=rows, shown=shared.SHOWN_ROWS)


@router.get("/policies", response_class=HTMLResponse)
def policies_page(request: Request) -> Response:
    who = principal(request)
    console = console_of(request)
    loaded, problems = policies.current_policies(console.settings.policies_dir)
    policies.record_versions(console.settings.control_url, loaded, f"console:{who.name}", console.now())
    shown = [
        (policy, policies.feed_rules(policy), policies.history(console.settings.control_url, policy.consumer))
        for _, policy in sorted(loaded.items())
    ]
    # The legal basis of every path carrying in-home devices' data (issue 16 item 3), per consumer.
    from privacy.basis import basis_table

    bases: dict[str, list[Any]] = {}
    for row in basis_table(loaded, console.settings.relay.upstreams):
        bases.setdefault(row.consumer, []).append(row)
    return page(request, "policies.html", who, policies=shown, problems=problems, bases=bases)


@router.get("/consumers", response_class=HTMLResponse)
def consumers_page(request: Request, done: str | None = None, error: str | None = None) -> Response:
    from api.consumers import list_consumers

    who = principal(request)
    console = console_of(request)
    listed = list_consumers(console.settings)
    waiting = pending.open_requests(console.settings, console.now())
    return page(request, "consumers.html", who, consumers=listed, pending=waiting, done=done, error=error)


async def _request(request: Request, name: str, action: str) -> Response:
    """An admin asks for a consumer-key change; a second admin must confirm it (api.admin.pending)."""
    who = await run_in_threadpool(principal, request)
    form = await form_of(request, who, admin=True)
    console = console_of(request)
    try:
        number = await run_in_threadpool(
            pending.request_change, console.settings, who.name, action, name, form.get("public_key"), console.now()
        )
    except NeuronError:
        return redirect(f"{BASE}/consumers?error={action}")
    detail = {"consumer": name, "request": number}
    await run_in_threadpool(_audit, request, f"console:{who.name}", f"console_request_{action}", "ok", detail)
    return redirect(f"{BASE}/consumers?done=requested")


@router.post("/consumers/{name}/revoke")
async def revoke(request: Request, name: str) -> Response:
    return await _request(request, name, "revoke")


@router.post("/consumers/{name}/keys")
async def add_key(request: Request, name: str) -> Response:
    return await _request(request, name, "key")


@router.post("/pending/{number}/confirm")
async def confirm_request(request: Request, number: int) -> Response:
    who = await run_in_threadpool(principal, request)
    await form_of(request, who, admin=True)
    console = console_of(request)
    try:
        done = await run_in_threadpool(pending.confirm, console.settings, number, who.name, console.now())
    except NeuronError:
        await run_in_threadpool(
            _audit, request, f"console:{who.name}", "console_confirm", "refused", {"request": number}
        )
        return redirect(f"{BASE}/consumers?error=confirm")
    action = "console_revoke_consumer" if done.action == "revoke" else "console_register_key"
    detail = {"consumer": done.consumer, "request": number, "requested_by": done.requested_by}
    if done.key_id:
        detail["key_id"] = done.key_id
    await run_in_threadpool(_audit, request, f"console:{who.name}", action, "ok", detail)
    return redirect(f"{BASE}/consumers?done={'revoke' if done.action == 'revoke' else 'key'}")


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request) -> Response:
    from api.admin.audit_log import counts_by_kind
    from api.audit_export import verify_audit

    who = principal(request)
    settings = console_of(request).settings
    return page(request, "audit.html", who, report=verify_audit(settings), kinds=counts_by_kind(settings))


@router.get("/audit/archive")
def audit_archive(request: Request) -> Response:
    from api.audit_export import export_audit

    principal(request)
    settings = console_of(request).settings
    with tempfile.TemporaryDirectory() as folder:
        info = export_audit(settings, Path(folder) / "audit.zip")
        body = info.path.read_bytes()
    name = f"neuron-audit-{settings.community_id}-{info.first_seq}-{info.last_seq}.zip"
    headers = {"content-disposition": f'attachment; filename="{name}"'}
    return Response(body, media_type="application/zip", headers=headers)


@router.get("/consent", response_class=HTMLResponse)
def consent_page(request: Request) -> Response:
    who = principal(request)
    return page(request, "consent.html", who, consent=overview.consent_summary(console_of(request).settings))


@router.get("/quality", response_class=HTMLResponse)
def quality_page(request: Request, done: str | None = None) -> Response:
    who = principal(request)
    settings = console_of(request).settings
    return page(
        request,
        "quality.html",
        who,
        quality=overview.quality(settings, console_of(request).now()),
        period=period(settings.timezone, console_of(request).now()).label,
        alarms=overview.alarms(settings),
        dead_letters=overview.push_dead_letters(settings),
        done=done if done == "resend" else None,
    )


@router.post("/push/resend")
async def resend_dead_letters(request: Request) -> Response:
    """Ask `neuron push` to send every open dead letter again (the console never reaches a broker)."""
    who = await run_in_threadpool(principal, request)
    await form_of(request, who, admin=True)
    console = console_of(request)
    marked = await run_in_threadpool(request_resend, console.settings.control_url, console.now())
    detail = {"dead_letters": marked}
    await run_in_threadpool(_audit, request, f"console:{who.name}", "console_push_resend", "requested", detail)
    return redirect(f"{BASE}/quality?done=resend")


def refused_page(request: Request, exc: Exception) -> Response:
    """403 with the reason, in the reader's language."""
    assert isinstance(exc, Refused)
    return page(request, "refused.html", None, status=403, reason=exc.reason)


def sign_in_first(request: Request, exc: Exception) -> Response:
    """GET: to the sign-in page, coming back here after; anything else: 401."""
    if request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{BASE}/login?next={_quote(target)}", status_code=303)
    return page(request, "refused.html", None, status=401, reason="refused.signin")


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="/")


__all__ = ["SignInRequired", "refused_page", "router", "sign_in_first"]
