"""`/docs`: the API's reference, rendered in the browser from `/openapi.json`, with nothing
fetched from elsewhere (the hub runs on networks without the internet; no CDN, no external
font). The page and its script are files of this package, served with a strict CSP.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

docs = APIRouter(include_in_schema=False)
STATIC = Path(__file__).with_name("static")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def _file(name: str, media_type: str) -> Response:
    return Response((STATIC / name).read_bytes(), media_type=media_type, headers={"Content-Security-Policy": CSP})


@docs.get("/docs")
def docs_page() -> Response:
    """The reference page."""
    return _file("docs.html", "text/html; charset=utf-8")


@docs.get("/docs/docs.js")
def docs_script() -> Response:
    return _file("docs.js", "text/javascript; charset=utf-8")


@docs.get("/docs/docs.css")
def docs_style() -> Response:
    return _file("docs.css", "text/css; charset=utf-8")
