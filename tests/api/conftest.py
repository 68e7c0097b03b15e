"""Fixtures of the export API tests (see tests/api/hub.py for what a test hub holds)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

import tests.api.consumer_kit  # noqa: F401  (the standalone consumer kit, importable without installing it)
from tests.api.hub import LiveHub, running_hub
from tests.api.proxy import TamperingProxy


@pytest.fixture(scope="session")
def live_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    """The hub shared by the tests that only read; tests must leave its data as they found it."""
    with running_hub(tmp_path_factory.mktemp("hub")) as hub:
        yield hub


@pytest.fixture
def fresh_hub(tmp_path: Path) -> Iterator[LiveHub]:
    """A hub of this test's own, for tests that publish, count audit entries or break things."""
    with running_hub(tmp_path / "hub") as hub:
        yield hub


@pytest.fixture
def set_clock(live_hub: LiveHub) -> Iterator[Callable[[datetime], None]]:
    """Freeze the hub's clock at a given instant for one test; the real clock comes back after."""
    original = live_hub.app.state.now

    def freeze(instant: datetime) -> None:
        live_hub.app.state.now = lambda: instant

    yield freeze
    live_hub.app.state.now = original


@pytest.fixture
def proxy(live_hub: LiveHub) -> Iterator[TamperingProxy]:
    """A man in the middle on loopback, passing traffic to the hub unless told to tamper."""
    with TamperingProxy(live_hub.url) as running:
        live_hub.admit(running.url)
        yield running
