"""The console end to end in real headless Chromium (Debian's, driven by Playwright): sign
in, visit every page, filter the shared data, drill into an export and compare its rows
with what the consumer received, download the audit archive and verify it, and the
refusals: a consumer's signature, an auditor's admin action, a form post without CSRF.

A screenshot of each page goes to var/screenshots/ (git-ignored) for a reviewer to look
at. Without chromium these tests skip, saying why; on CI (NEURON_REQUIRE_SERVICES=1) they
fail instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from api.audit_export import verify_archive
from api.consumers import list_consumers
from api.signing import sign_request
from kernel.settings import REPO_ROOT
from tests.api.admin.console import ADMIN, AUDITOR, PASSWORDS, ConsoleHub

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO_ROOT / "var" / "screenshots"
PAGES = {
    "overview": "/",
    "shared": "/shared",
    "policies": "/policies",
    "consumers": "/consumers",
    "audit": "/audit",
    "consent": "/consent",
    "quality": "/quality",
    "audit-log": "/audit/log",
    "audit-monthly": "/audit/monthly",
    "audit-deid": "/audit/deid",
    "audit-receipts": "/audit/receipts",
}


def _unavailable(reason: str) -> None:
    if os.environ.get("NEURON_REQUIRE_SERVICES") == "1":
        pytest.fail(reason + " (CI requires it: apt-get install -y chromium chromium-driver)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium under Playwright, for the module."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium chromium-driver)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


class Tab:
    """One browser context and page, collecting console errors (a CSP violation is one)."""

    def __init__(self, chromium: Any, console: ConsoleHub, **context: Any) -> None:
        self.console = console
        self.context = chromium.new_context(accept_downloads=True, locale="zh-CN", **context)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.errors: list[str] = []
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))

    def go(self, path: str) -> Any:
        return self.page.goto(self.console.url + path)

    def sign_in(self, name: str) -> None:
        self.go("/")
        assert "/admin/login" in self.page.url
        self.page.fill("input[name=name]", name)
        self.page.fill("input[name=password]", PASSWORDS[name])
        self.page.click("button[type=submit]")
        self.page.wait_for_url(self.console.url + "/")

    def shoot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def post_form(self, path: str, fields: dict[str, str]) -> None:
        """Submit a form the page did not offer, as a forged or hand-made post would."""
        self.page.evaluate(
            """([action, fields]) => {
                const form = document.createElement("form");
                form.method = "post";
                form.action = action;
                for (const [name, value] of Object.entries(fields)) {
                    const input = document.createElement("input");
                    input.type = "hidden"; input.name = name; input.value = value;
                    form.appendChild(input);
                }
                document.body.appendChild(form);
                form.submit();
            }""",
            ["/admin" + path, fields],
        )
        self.page.wait_for_load_state()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(chromium: Any, console: ConsoleHub) -> Iterator[Tab]:
    opened = Tab(chromium, console)
    yield opened
    opened.close()


def test_sign_in_and_visit_every_page(tab: Tab) -> None:
    tab.go("/")
    tab.shoot("login")
    tab.sign_in(ADMIN)
    for name, path in PAGES.items():
        response = tab.go(path)
        assert response.status == 200, name
        assert tab.page.locator("nav.menu a.current").count() == 1, name
        tab.shoot(name)
    tab.page.click("#lang-switch")
    assert "Quality and alarms" in tab.page.content()
    tab.go("/")
    tab.shoot("overview-en")
    assert tab.page.locator("svg.chart").count() >= 1
    assert tab.errors == []  # no CSP violation, no missing asset


def test_filter_shared_data_and_drill_into_an_export(tab: Tab, console: ConsoleHub) -> None:
    tab.sign_in(ADMIN)
    tab.go("/shared")
    tab.page.select_option("#filter-consumer", "public_security")
    tab.page.click("#filter button[type=submit]")
    tab.page.wait_for_url("**/shared?consumer=public_security*")
    listed = tab.page.locator("#exports tbody tr")
    assert listed.count() == 2
    assert {listed.nth(i).get_attribute("data-consumer") for i in range(2)} == {"public_security"}
    tab.shoot("shared-filtered")
    # The older of the two is the consumer's first page.
    listed.nth(1).locator("a.drill").click()
    tab.page.wait_for_selector("#export-table")
    tab.shoot("export")
    assert tab.page.locator("#confirmed").count() == 1
    # Headers and cells read for people (local time, yuan); the raw values ride along as data-*.
    header = tab.page.locator("#export-table thead th")
    fields = [header.nth(i).get_attribute("data-field") for i in range(header.count())]
    shown = tab.page.eval_on_selector_all(
        "#export-table tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.dataset.value))"
    )
    received = console.received["public_security"][0]
    assert fields == list(received[0])
    assert shown == [[str(row[f]) for f in fields] for row in received]


def test_download_the_audit_archive_and_verify_it(tab: Tab, console: ConsoleHub, tmp_path: Path) -> None:
    tab.sign_in(AUDITOR)
    tab.go("/audit")
    assert "完整" in tab.page.inner_text("#chain-status")
    with tab.page.expect_download() as download:
        tab.page.click("#download-archive")
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    report = verify_archive(path, jwks=console.hub.jwks)  # pinned to the hub's published keys
    assert report.ok and report.entries > len(console.exports)


def test_a_consumer_key_never_opens_the_console(chromium: Any, console: ConsoleHub) -> None:
    identity = console.hub.identities["district"]
    request = requests.Request("GET", console.url + "/").prepare()
    sign_request(request, identity.key_id, identity.private_key)
    headers = {name: request.headers[name] for name in ("Signature", "Signature-Input")}
    signed = Tab(chromium, console, extra_http_headers=headers)
    try:
        response = signed.go("/")
        assert response.status == 404 and "not found" in signed.page.content().lower()
        assert "/admin/login" not in signed.page.url
        signed.shoot("consumer-key-refused")
    finally:
        signed.close()


def test_an_auditor_cannot_revoke(tab: Tab, console: ConsoleHub) -> None:
    tab.sign_in(AUDITOR)
    tab.go("/consumers")
    assert tab.page.locator("form.revoke").count() == 0  # not offered
    token = tab.page.get_attribute("form.signout input[name=csrf_token]", "value")
    tab.post_form("/consumers/open_data/revoke", {"csrf_token": token or ""})
    assert "审计员" in tab.page.inner_text("#refused")
    tab.shoot("auditor-refused")
    assert next(c for c in list_consumers(console.hub.settings) if c.name == "open_data").revoked_at is None


def test_a_post_without_csrf_is_refused(tab: Tab, console: ConsoleHub) -> None:
    tab.sign_in(ADMIN)
    tab.go("/consumers")
    assert tab.page.locator("form.revoke").count() >= 1  # an admin is offered the action
    tab.post_form("/consumers/open_data/revoke", {})
    assert "安全令牌" in tab.page.inner_text("#refused")
    tab.shoot("csrf-refused")
    assert next(c for c in list_consumers(console.hub.settings) if c.name == "open_data").revoked_at is None
