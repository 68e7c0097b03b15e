"""Who may open which console route: anonymous browsers are sent to sign in (401 for a
POST), a consumer's signed request never reaches the console, an auditor reads but may
not act, a POST without the session's CSRF token is refused, and repeated wrong
passwords lock an account."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from api.admin.accounts import add_admin, disable_admin, list_admins
from api.consumers import list_consumers, register_consumer
from api.signing import sign_request
from api.verify import verify_response
from tests.api.admin.console import ADMIN, AUDITOR, PASSWORDS, Browser, ConsoleHub
from tests.api.hub import public_pem, send
from warehouse.control import session_scope
from warehouse.models import AuditEntry

PAGES = ["/", "/shared", "/shared/{export}", "/policies", "/consumers", "/audit", "/audit/archive", "/consent"]
PAGES += ["/quality"]
ACTIONS = ["/consumers/open_data/revoke", "/consumers/open_data/keys", "/push/resend", "/logout"]
ADMIN_ACTIONS = ["/consumers/open_data/revoke", "/consumers/open_data/keys", "/push/resend"]


@pytest.fixture
def as_admin(browser: Browser) -> Browser:
    assert browser.sign_in(ADMIN).status_code == 303
    return browser


@pytest.fixture
def as_auditor(browser: Browser) -> Browser:
    assert browser.sign_in(AUDITOR).status_code == 303
    return browser


@pytest.fixture
def clock(console: ConsoleHub) -> Iterator[list[timedelta]]:
    """Move the hub's clock: append to the list to shift it; the real clock comes back after."""
    app, shift = console.hub.app, [timedelta(0)]
    original = app.state.now
    app.state.now = lambda: original() + sum(shift, timedelta(0))
    yield shift
    app.state.now = original


def _at(console: ConsoleHub, path: str) -> str:
    return path.format(export=console.exports[0])


def _keys(console: ConsoleHub, name: str) -> list[str]:
    return [k.key_id for c in list_consumers(console.hub.settings) if c.name == name for k in c.keys]


def _consumer_active(console: ConsoleHub, name: str) -> bool:
    return next(c for c in list_consumers(console.hub.settings) if c.name == name).revoked_at is None


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_pages_redirect_to_sign_in(browser: Browser, console: ConsoleHub, path: str) -> None:
    path = _at(console, path)
    response = browser.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/login?next=/admin" + path.rstrip("/"))


@pytest.mark.parametrize("path", ACTIONS)
def test_anonymous_posts_are_unauthorised(browser: Browser, path: str, console: ConsoleHub) -> None:
    response = browser.post(path, {"csrf_token": "x", "public_key": "x"})
    assert response.status_code == 401
    assert _consumer_active(console, "open_data")


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", ["/admin", *("/admin" + p for p in PAGES + ACTIONS)])
def test_a_consumer_signed_request_never_reaches_the_console(console: ConsoleHub, path: str, method: str) -> None:
    identity = console.hub.identities["district"]
    path, body = _at(console, path), b"csrf_token=x" if method == "POST" else b""
    request = requests.Request(method, console.hub.url + path, data=body or None).prepare()
    sign_request(request, identity.key_id, identity.private_key, body=body or None)
    response = send(request)
    verify_response(response, console.hub.jwks)
    assert (response.status_code, response.json()) == (404, {"detail": "not found"})
    assert "set-cookie" not in response.headers
    assert _consumer_active(console, "open_data")


def test_a_consumer_signature_beside_a_valid_session_is_still_refused(as_admin: Browser, console: ConsoleHub) -> None:
    identity = console.hub.identities["district"]
    request = requests.Request("GET", console.url + "/audit", cookies=as_admin.session.cookies).prepare()
    sign_request(request, identity.key_id, identity.private_key)
    assert send(request).status_code == 404


@pytest.mark.parametrize("path", PAGES)
def test_an_auditor_reads_every_page(as_auditor: Browser, console: ConsoleHub, path: str) -> None:
    assert as_auditor.get(_at(console, path)).status_code == 200


@pytest.mark.parametrize("path", ADMIN_ACTIONS)
def test_an_auditor_may_not_act(as_auditor: Browser, path: str, console: ConsoleHub) -> None:
    keys_before = _keys(console, "open_data")
    token = as_auditor.csrf("/")
    response = as_auditor.post(path, {"csrf_token": token, "public_key": public_pem(Ed25519PrivateKey.generate())})
    assert response.status_code == 403
    assert "审计员" in response.text
    assert _consumer_active(console, "open_data")
    assert _keys(console, "open_data") == keys_before


@pytest.mark.parametrize("token", [None, "", "forged"])
@pytest.mark.parametrize("path", ADMIN_ACTIONS)
def test_a_post_without_the_session_csrf_token_is_refused(
    as_admin: Browser, console: ConsoleHub, path: str, token: str | None
) -> None:
    form = {"public_key": "x"} | ({"csrf_token": token} if token is not None else {})
    response = as_admin.post(path, form)
    assert response.status_code == 403
    assert "安全令牌" in response.text
    assert _consumer_active(console, "open_data")


def test_sign_in_without_the_form_token_is_refused(browser: Browser) -> None:
    response = browser.post("/login", {"name": ADMIN, "password": PASSWORDS[ADMIN]})
    assert response.status_code == 403
    assert "neuron_admin=" not in response.headers.get("set-cookie", "")


def test_key_changes_need_a_second_admin(as_admin: Browser, console: ConsoleHub) -> None:
    """Issue 17: one admin asks, a different admin confirms; only then does the change happen."""
    settings = console.hub.settings
    register_consumer(settings, "temp_consumer", public_pem(Ed25519PrivateKey.generate()), "open_data")
    pem = public_pem(Ed25519PrivateKey.generate()).decode()
    token = as_admin.csrf("/consumers")
    added = as_admin.post("/consumers/temp_consumer/keys", {"csrf_token": token, "public_key": pem})
    assert (added.status_code, added.headers["location"]) == (303, "/admin/consumers?done=requested")
    revoked = as_admin.post("/consumers/temp_consumer/revoke", {"csrf_token": token})
    assert revoked.headers["location"] == "/admin/consumers?done=requested"
    temp = next(c for c in list_consumers(settings) if c.name == "temp_consumer")
    assert temp.revoked_at is None and len(temp.keys) == 1  # nothing happened yet
    page = as_admin.get("/consumers").text
    numbers = [int(n) for n in re.findall(r'id="pending-(\d+)"', page)]
    assert len(numbers) >= 2 and "/confirm" not in page  # the requester is not offered to confirm
    own = as_admin.post(f"/pending/{numbers[-1]}/confirm", {"csrf_token": token})
    assert own.headers["location"] == "/admin/consumers?error=confirm"
    add_admin(settings.control_url, "dave", "admin", "dave's long password")
    second = Browser(console.url)
    try:
        assert second.sign_in("dave", "dave's long password").status_code == 303
        other = second.csrf("/consumers")
        for number in numbers[-2:]:
            assert second.post(f"/pending/{number}/confirm", {"csrf_token": other}).status_code == 303
        again = second.post(f"/pending/{numbers[-1]}/confirm", {"csrf_token": other})
        assert again.headers["location"] == "/admin/consumers?error=confirm"  # once only
    finally:
        second.close()
        disable_admin(settings.control_url, "dave")
    temp = next(c for c in list_consumers(settings) if c.name == "temp_consumer")
    assert temp.revoked_at is not None and len(temp.keys) == 2
    with session_scope(settings.control_url) as session:
        done = session.execute(select(AuditEntry).where(AuditEntry.actor == "console:dave")).scalars().all()
        actions = [(e.action, json.loads(e.detail or "{}").get("requested_by")) for e in done]
    assert ("console_register_key", ADMIN) in actions
    assert ("console_revoke_consumer", ADMIN) in actions
    bad = as_admin.post("/consumers/temp_consumer/keys", {"csrf_token": token, "public_key": "not a key"})
    assert bad.headers["location"] == "/admin/consumers?error=key"


def test_repeated_failures_lock_the_account_until_the_lockout_ends(
    browser: Browser, console: ConsoleHub, clock: list[timedelta]
) -> None:
    url = console.hub.settings.control_url
    add_admin(url, "carol", "auditor", "carol's right password")
    for _ in range(5):
        assert browser.sign_in("carol", "wrong password!").headers["location"] == "/admin/login?failed=1"
    # Locked: the right password does not open it, and the answer is the same as a wrong one.
    refused = browser.sign_in("carol", "carol's right password")
    assert refused.headers["location"] == "/admin/login?failed=1"
    assert "neuron_admin=" not in refused.headers.get("set-cookie", "")
    assert next(a for a in list_admins(url) if a.name == "carol").locked_until is not None
    clock.append(timedelta(minutes=16))
    assert browser.sign_in("carol", "carol's right password").headers["location"] == "/admin/"
    assert browser.get("/").status_code == 200


def test_unknown_names_and_wrong_passwords_read_the_same(browser: Browser) -> None:
    unknown = browser.sign_in("nobody", "whatever password")
    wrong = browser.sign_in(ADMIN, "whatever password")
    assert unknown.headers["location"] == wrong.headers["location"] == "/admin/login?failed=1"


def test_sessions_expire_when_idle_and_after_their_lifetime(as_admin: Browser, clock: list[timedelta]) -> None:
    clock.append(timedelta(minutes=29))
    assert as_admin.get("/").status_code == 200
    clock.append(timedelta(minutes=29))  # idle 29 minutes again: still alive
    assert as_admin.get("/").status_code == 200
    clock.append(timedelta(minutes=31))
    assert as_admin.get("/").status_code == 303


def test_sessions_end_at_their_absolute_lifetime(as_admin: Browser, clock: list[timedelta]) -> None:
    for _ in range(17):  # active every 29 minutes, past eight hours
        clock.append(timedelta(minutes=29))
        response = as_admin.get("/")
    assert response.status_code == 303


def test_disabling_an_account_ends_its_sessions(browser: Browser, console: ConsoleHub) -> None:
    url = console.hub.settings.control_url
    add_admin(url, "dave", "admin", "dave's long password")
    browser.sign_in("dave", "dave's long password")
    assert browser.get("/").status_code == 200
    disable_admin(url, "dave")
    assert browser.get("/").status_code == 303
    assert browser.sign_in("dave", "dave's long password").headers["location"] == "/admin/login?failed=1"


def test_sign_out_ends_the_session(as_admin: Browser) -> None:
    cookie = as_admin.session.cookies.get("neuron_admin")
    assert as_admin.post("/logout", {"csrf_token": as_admin.csrf("/")}).status_code == 303
    as_admin.session.cookies.set("neuron_admin", cookie, path="/admin")
    assert as_admin.get("/").status_code == 303


def test_cookies_and_security_headers(browser: Browser, console: ConsoleHub) -> None:
    signed_in = browser.sign_in(ADMIN)
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie.split("neuron_admin_login")[0]  # plain HTTP on loopback
    page = browser.get("/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    assert (
        "<script>" not in page.text
        and " style=" not in page.text
        and "http://" not in page.text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )


def test_cookies_are_secure_behind_tls(console: ConsoleHub) -> None:
    # uvicorn trusts X-Forwarded-Proto from loopback, as from a TLS-terminating proxy there.
    tls = Browser(console.url)
    tls.session.headers["X-Forwarded-Proto"] = "https"
    response = tls.get("/login")
    assert "Secure" in response.headers["set-cookie"]


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/v1/feeds", "/admin\\@evil"])
def test_no_open_redirect_after_sign_in(browser: Browser, target: str) -> None:
    token = browser.csrf("/login")
    form = {"csrf_token": token, "name": ADMIN, "password": PASSWORDS[ADMIN], "next": target}
    assert browser.post("/login", form).headers["location"] == "/admin/"


def test_signing_in_again_replaces_the_session(as_admin: Browser) -> None:
    first = as_admin.session.cookies.get("neuron_admin")
    as_admin.sign_in(ADMIN)
    assert as_admin.session.cookies.get("neuron_admin") != first
    stale = Browser(as_admin.url)
    stale.session.cookies.set("neuron_admin", first, path="/admin")
    assert stale.get("/").status_code == 303
