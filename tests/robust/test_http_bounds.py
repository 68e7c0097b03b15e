"""D3, D6: a vendor API can neither hang a window, loop it, nor crash it; every failure is one
line of the hub's error tree (FatalError/RetriableError), never a raw exception."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.http import WindowBudget, get_json, http_session, paged
from kernel.errors import FatalError, NeuronError, RetriableError
from tests.robust.hostile_http import hostile_vendor

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def vendor() -> Iterator[str]:
    with hostile_vendor() as url:
        yield url


def pages(url: str, budget: WindowBudget | None = None, timeout: float = 2.0) -> list[Any]:
    session = http_session("t", max_retries=0)
    return list(paged(session, url, {}, timeout, "test vendor", budget=budget))


def test_a_server_dripping_bytes_meets_the_requests_deadline(vendor: str) -> None:
    # 40 bytes 0.2 s apart: 8 s, though no single read waits more than 0.2 s.
    with pytest.raises(RetriableError, match="not received within its 1 s deadline"):
        get_json(http_session("t", 0), vendor + "/drip", {}, 1.0, "test vendor")


def test_a_repeated_next_page_token_ends_the_window(vendor: str) -> None:
    with pytest.raises(FatalError, match="token repeats"):
        pages(vendor + "/same-token")


def test_a_window_has_a_page_limit(vendor: str) -> None:
    with pytest.raises(FatalError, match="more than 5 pages"):
        pages(vendor + "/endless", WindowBudget("test vendor", 60, max_pages=5))


def test_a_window_has_a_deadline_for_all_its_pages(vendor: str) -> None:
    with pytest.raises(RetriableError, match="window not read within"):
        pages(vendor + "/slow-pages", WindowBudget("test vendor", 1.0, max_pages=1000))


@pytest.mark.parametrize(
    ("path", "error", "words"),
    [
        ("/redirect", FatalError, "redirects loop"),
        ("/short", RetriableError, "cut short"),
        ("/nested", RetriableError, "not JSON"),
    ],
)
def test_broken_answers_end_in_the_error_tree(vendor: str, path: str, error: type, words: str) -> None:
    with pytest.raises(error, match=words) as caught:
        pages(vendor + path)
    assert isinstance(caught.value, NeuronError) and "\n" not in str(caught.value)


def test_a_page_larger_than_the_limit_is_refused(vendor: str) -> None:
    with pytest.raises(FatalError, match="larger than"):
        get_json(http_session("t", 0), vendor + "/huge", {}, 5.0, "test vendor", max_bytes=100_000)
