"""The lock-out holds under concurrency (issue 17): the failure counter is counted by the
database, so wrong passwords sent at the same time cannot overwrite each other's counts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from api.admin.accounts import add_admin, disable_admin
from tests.api.admin.console import Browser, ConsoleHub
from warehouse.control import session_scope
from warehouse.models import AdminUser

NAME, PASSWORD = "mallory-target", "the right long password"


def _wrong_sign_in(url: str) -> int:
    browser = Browser(url)
    try:
        return browser.sign_in(NAME, "a wrong password!").status_code
    finally:
        browser.close()


def test_thirty_wrong_passwords_ten_at_a_time_lock_the_account(console: ConsoleHub) -> None:
    control = console.hub.settings.control_url
    add_admin(control, NAME, "auditor", PASSWORD)
    try:
        with ThreadPoolExecutor(max_workers=10) as pool:
            for _ in range(3):  # three waves of ten concurrent requests
                assert set(pool.map(_wrong_sign_in, [console.url] * 10)) == {303}
        with session_scope(control) as session:
            user = session.execute(select(AdminUser).where(AdminUser.name == NAME)).scalar_one()
            assert user.locked_until is not None
        # Locked: even the right password is refused now.
        browser = Browser(console.url)
        assert browser.sign_in(NAME, PASSWORD).headers["location"].endswith("/login?failed=1")
        browser.close()
    finally:
        disable_admin(control, NAME)


def test_the_console_is_not_on_the_consumers_port(console: ConsoleHub) -> None:
    """The console has its own listener (issue 17); /admin on the API's port is an unknown path."""
    browser = Browser(console.hub.url + "/admin")
    try:
        assert browser.get("/login").status_code == 404
        assert browser.get("/").status_code == 404
    finally:
        browser.close()
    assert Browser(console.url).get("/login").status_code == 200
