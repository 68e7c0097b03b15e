"""The HTTP API connector family: token auth, paging, retries with backoff, bounded timeouts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from kernel.errors import FatalError, RetriableError, SourceAuthError

RETRY_STATUSES = (429, 500, 502, 503, 504)


def http_session(token: str, max_retries: int, backoff: float = 0.5) -> requests.Session:
    """A session that retries idempotent requests on transient failures, with backoff."""
    retry = Retry(
        total=max_retries,
        connect=max_retries,
        read=max_retries,
        status=max_retries,
        backoff_factor=backoff,
        backoff_max=30,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["Authorization"] = f"Bearer {token}"
    session.headers["Accept"] = "application/json"
    return session


def get_json(session: requests.Session, url: str, params: dict[str, Any], timeout: float, source: str) -> Any:
    """GET a JSON document, mapping failures to the hub's error tree (never echoing data)."""
    try:
        response = session.get(url, params=params, timeout=(min(timeout, 5.0), timeout))
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise RetriableError(f"{source}: no answer after retries ({type(exc).__name__})") from exc
    if response.status_code in (401, 403):
        raise SourceAuthError(f"{source}: credentials refused (HTTP {response.status_code})")
    if response.status_code in RETRY_STATUSES:
        raise RetriableError(f"{source}: still HTTP {response.status_code} after retries")
    if response.status_code != 200:
        raise FatalError(f"{source}: unexpected HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError as exc:
        raise RetriableError(f"{source}: response is not JSON (truncated?)") from exc


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
) -> Iterator[list[dict[str, Any]]]:
    """Yield the pages of a token-paged endpoint until the source has no next page."""
    page_params = dict(params)
    while True:
        body = get_json(session, url, page_params, timeout, source)
        if not isinstance(body, dict) or not isinstance(body.get(data_key), list):
            raise FatalError(f"{source}: response has no {data_key!r} list")
        yield body[data_key]
        token = body.get(token_key)
        if not token:
            return
        page_params = {**params, token_param: token}
