"""What the hub shows operators and the outside world: Prometheus metrics for the networks
allowed to scrape them, no configuration leaks (OWASP API8), a complete inventory of
routes (API9), no outbound requests on a caller's behalf (API7), and a partition file that
changes while it streams never reaching the consumer whole (API10's other side: the
consumer's client trusts nothing it cannot verify)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from api.client import verify_response
from api.streaming import PartitionFile
from kernel.errors import IntegrityError
from kernel.settings import REPO_ROOT, ApiSettings
from tests.api.hub import ROOMY, LiveHub, running_hub, send
from tests.api.lake import FEED

SERVER_MODULES = [p for p in (REPO_ROOT / "api").glob("*.py") if p.stem not in {"client", "download", "pull", "verify"}]


def test_metrics_count_requests_without_naming_anyone(live_hub: LiveHub) -> None:
    with live_hub.client("district") as client:
        client.catalog()
        client.records_ndjson(FEED, limit=3)
    response = send(live_hub.signed("/metrics", None))
    verify_response(response, live_hub.jwks)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'neuron_api_requests_total{method="GET",route="/v1/feeds",status="200"}' in text
    assert 'neuron_api_rows_served_total{format="ndjson"}' in text
    assert "neuron_api_request_duration_seconds_bucket" in text
    for name in ("district", "public_security", "music-square"):
        assert name not in text  # no consumer, no community, no data value


def test_metrics_are_not_found_outside_the_allowed_networks(tmp_path: Path) -> None:
    options = ROOMY.model_copy(update={"metrics_networks": ["10.0.0.0/8"]})
    with running_hub(tmp_path / "hub", options=options) as hub:
        response = send(hub.signed("/metrics", None))
        verify_response(response, hub.jwks)
        assert (response.status_code, response.json()) == (404, {"detail": "not found"})


def test_metrics_networks_are_checked_when_configured() -> None:
    with pytest.raises(ValueError):
        ApiSettings(metrics_networks=["not-a-network"])


def test_answers_leak_no_configuration(live_hub: LiveHub) -> None:
    response = send(live_hub.signed("/v1/feeds", live_hub.identities["district"]))
    assert "server" not in {name.lower() for name in response.headers}
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "access-control-allow-origin" not in {name.lower() for name in response.headers}
    for path in ("/redoc", "/v2/feeds", "/v1/feeds/../../etc/passwd", "/.env", "/v1/feeds/%2e%2e/admin"):
        answer = send(live_hub.signed(path, live_hub.identities["district"]))
        verify_response(answer, live_hub.jwks)
        assert (answer.status_code, answer.json()) == (404, {"detail": "not found"}), path


def test_every_route_is_documented_and_versioned(live_hub: LiveHub) -> None:
    document = live_hub.get("/openapi.json").json()
    routes = {route.path for route in live_hub.app.routes if getattr(route, "include_in_schema", False)}
    assert routes == set(document["paths"])
    data = {path for path in routes if path not in {"/healthz", "/metrics", "/.well-known/jwks.json"}}
    assert all(path.startswith("/v1/") for path in data)
    assert document["info"]["version"] == "1"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return names | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}


@pytest.mark.parametrize("module", SERVER_MODULES, ids=lambda p: p.stem)
def test_the_server_makes_no_outbound_requests(module: Path) -> None:
    # SSRF needs a server that fetches what a caller names; the hub's API never fetches anything.
    outbound = {"requests", "httpx", "urllib.request", "http.client", "aiohttp", "socket"}
    assert not {name for name in _imports(module) if name.split(".")[0] in outbound or name in outbound}


async def _stream(response: PartitionFile) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with pytest.raises(IntegrityError):
        await response({"type": "http"}, None, send)  # type: ignore[arg-type]
    return sent


def test_a_file_that_changes_while_it_streams_never_arrives_whole(tmp_path: Path) -> None:
    import anyio

    path = tmp_path / "part.parquet"
    path.write_bytes(b"x" * (3 * 4096 + 10))
    response = PartitionFile(path, "00" * 32, {}, chunk_size=4096)  # a digest the bytes do not have
    sent = anyio.run(_stream, response)
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    # The head went out promising the digest; the last chunk is held back and the stream broken.
    assert sent[0]["type"] == "http.response.start"
    assert sum(len(m["body"]) for m in bodies) < path.stat().st_size
    assert all(m.get("more_body") for m in bodies)
