"""The HTTP API connector family: token auth, paging, retries with backoff, bounded time and size.

Every bound is the hub's, not the vendor's good behaviour: a request has a deadline for its
whole body (a server that drips a byte every few seconds never trips a socket's read
timeout), a window has a deadline for all its pages and retries, a window has a page limit,
a page has a size limit, and a next-page token seen before ends the window (a vendor
looping on one token would otherwise be asked forever). Every failure ends as one line of
the hub's error tree naming the source, never a traceback or the data.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util.retry import Retry

from kernel.errors import FatalError, RetriableError, SourceAuthError

RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_REDIRECTS = 5
READ_CHUNK = 64 * 1024


def http_session(token: str, max_retries: int, backoff: float = 0.5) -> requests.Session:
    """A session that retries idempotent requests on transient failures, with backoff."""
    retry = Retry(
        total=max_retries,
        connect=max_retries,
        read=max_retries,
        status=max_retries,
        redirect=MAX_REDIRECTS,
        backoff_factor=backoff,
        backoff_max=30,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session = requests.Session()
    session.max_redirects = MAX_REDIRECTS
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["Authorization"] = f"Bearer {token}"
    session.headers["Accept"] = "application/json"
    return session


class WindowBudget:
    """What one window of a source may spend: a deadline for all its requests, a page count.

    Retries' back-off sleeps happen inside a request, so a window may overrun its deadline by
    at most one request's retries; the next request is then refused.
    """

    def __init__(self, source: str, seconds: float = 900.0, max_pages: int = 10_000) -> None:
        self.source, self.seconds, self.max_pages = source, seconds, max_pages
        self.deadline = time.monotonic() + seconds
        self.pages = 0

    def remaining(self) -> float:
        """Seconds left; raises once the window's deadline has passed."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise RetriableError(f"{self.source}: window not read within its {self.seconds:g} s deadline")
        return left

    def next_page(self) -> None:
        """Count a page; raises past the page limit (a vendor that never says it is done)."""
        self.pages += 1
        if self.pages > self.max_pages:
            raise FatalError(f"{self.source}: more than {self.max_pages} pages in one window")


def get_json(
    session: requests.Session,
    url: str,
    params: dict[str, Any],
    timeout: float,
    source: str,
    budget: WindowBudget | None = None,
    max_bytes: int = 64 * 1024 * 1024,
) -> Any:
    """GET a JSON document within `timeout` seconds for the whole body (and the window's budget),
    mapping every failure to the hub's error tree (never echoing data)."""
    budget = budget or WindowBudget(source)
    budget.remaining()
    try:
        response = session.get(url, params=params, timeout=(min(timeout, 5.0), timeout), stream=True)
    except requests.TooManyRedirects as exc:
        raise FatalError(f"{source}: redirects loop (more than {MAX_REDIRECTS})") from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise RetriableError(f"{source}: no answer after retries ({type(exc).__name__})") from exc
    except requests.RequestException as exc:
        raise FatalError(f"{source}: request failed ({type(exc).__name__})") from exc
    with response:
        if response.status_code in (401, 403):
            raise SourceAuthError(f"{source}: credentials refused (HTTP {response.status_code})")
        if response.status_code in RETRY_STATUSES:
            raise RetriableError(f"{source}: still HTTP {response.status_code} after retries")
        if response.status_code != 200:
            raise FatalError(f"{source}: unexpected HTTP {response.status_code}")
        # The body's deadline runs from the headers: the attempts before them (each bounded by
        # the read timeout) are urllib3's retries, which the window's deadline bounds.
        limit = min(timeout, budget.remaining())
        late = (
            f"window not read within its {budget.seconds:g} s deadline"
            if limit < timeout
            else f"response not received within its {timeout:g} s deadline"
        )
        body = _read_body(response, time.monotonic() + limit, max_bytes, source, late)
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
        raise RetriableError(f"{source}: response is not JSON (truncated?)") from exc


def _read_body(response: requests.Response, deadline: float, max_bytes: int, source: str, late: str) -> bytes:
    """The body, read one socket receive at a time so that the deadline holds for the whole of it."""
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            if time.monotonic() > deadline:
                raise RetriableError(f"{source}: {late}")
            chunk = response.raw.read1(READ_CHUNK, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise FatalError(f"{source}: response larger than {max_bytes} bytes")
            chunks.append(chunk)
    except (Urllib3Error, requests.RequestException, OSError) as exc:
        # A body shorter than its Content-Length, a reset, a socket read timeout.
        raise RetriableError(f"{source}: response cut short ({type(exc).__name__})") from exc
    return b"".join(chunks)


def paged(
    session: requests.Session,
    url: str,
    params: dict[str, Any],
    timeout: float,
    source: str,
    *,
    data_key: str = "data",
    token_key: str = "next_page_token",
    token_param: str = "page_token",
    budget: WindowBudget | None = None,
    max_bytes: int = 64 * 1024 * 1024,
) -> Iterator[list[Any]]:
    """Yield the pages of a token-paged endpoint until the source has no next page."""
    budget = budget or WindowBudget(source)
    page_params = dict(params)
    seen: set[str] = set()
    while True:
        budget.next_page()
        body = get_json(session, url, page_params, timeout, source, budget, max_bytes)
        if not isinstance(body, dict) or not isinstance(body.get(data_key), list):
            raise FatalError(f"{source}: response has no {data_key!r} list")
        yield body[data_key]
        token = body.get(token_key)
        if not token:
            return
        if not isinstance(token, (str, int)) or isinstance(token, bool):
            raise FatalError(f"{source}: next-page token is not a string")
        token = str(token)
        if token in seen:
            raise FatalError(f"{source}: next-page token repeats (the source pages in a loop)")
        seen.add(token)
        page_params = {**params, token_param: token}
