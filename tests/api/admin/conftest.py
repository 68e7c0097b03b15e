"""Fixtures of the console tests: one hub with a console for the module's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.admin.console import Browser, ConsoleHub, console_hub


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleHub]:
    """The console hub shared by the admin tests; tests that change it undo what they did."""
    with console_hub(tmp_path_factory.mktemp("console")) as hub:
        yield hub


@pytest.fixture
def browser(console: ConsoleHub) -> Iterator[Browser]:
    """A fresh browser (no cookies) at the console."""
    client = Browser(console.url)
    yield client
    client.close()
