"""HTTPS by default (issue 17), served as `neuron serve` serves it: the certificate `neuron
init` makes (SANs: the public names), HSTS, Secure console cookies, and a consumer that pins
both the channel (the hub's certificate) and the keys (the JWKS fingerprint), never trusting
what the hub sends first."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509

from api.app import create_app, create_console_app
from api.client import HubClient
from api.pull import pull_feed
from api.transport import tls_options
from kernel.errors import ConfigError, IntegrityError
from privacy.tls import ensure_certificate, hub_certificate, jwks_fingerprint
from tests.api.admin.console import CSRF
from tests.api.hub import FLOW, LiveHub, ServerThread


@pytest.fixture(scope="module")
def https_hub(live_hub: LiveHub) -> Iterator[tuple[LiveHub, str, Path]]:
    """The shared hub's data, served a second time over HTTPS with its own certificate."""
    ensure_certificate(live_hub.settings)
    with ServerThread(create_app(live_hub.settings), tls=tls_options(live_hub.settings)) as server:
        yield live_hub, server.url, hub_certificate(live_hub.settings).certfile


def test_init_makes_a_certificate_naming_the_public_names(https_hub: tuple[LiveHub, str, Path]) -> None:
    hub, _, certfile = https_hub
    cert = x509.load_pem_x509_certificate(certfile.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    assert (certfile.parent / "hub.key").stat().st_mode & 0o077 == 0
    assert ensure_certificate(hub.settings) is False  # kept, never replaced behind the operator's back


def test_the_api_answers_over_https_with_hsts_and_only_to_who_trusts_its_certificate(
    https_hub: tuple[LiveHub, str, Path],
) -> None:
    _, url, certfile = https_hub
    answer = requests.get(url + "/healthz", verify=str(certfile), timeout=10)
    assert answer.status_code == 200
    assert answer.headers["strict-transport-security"].startswith("max-age=31536000")
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url + "/healthz", timeout=10)  # the system's CAs do not vouch for it


def test_pull_over_https_pins_the_jwks_by_fingerprint(https_hub: tuple[LiveHub, str, Path], tmp_path: Path) -> None:
    hub, url, certfile = https_hub
    identity = hub.identities["district"]
    pin = jwks_fingerprint(hub.jwks)
    with HubClient(url, identity.key_id, identity.private_key, jwks_fingerprint=pin, ca=certfile) as client:
        assert pull_feed(client, FLOW, tmp_path).rows > 0
    wrong = "sha256:" + "0" * 64
    client = HubClient(url, identity.key_id, identity.private_key, jwks_fingerprint=wrong, ca=certfile)
    with client, pytest.raises(IntegrityError, match="pinned fingerprint"):
        client.catalog()
    with pytest.raises(ConfigError, match="pin the hub's keys"):
        HubClient(url, identity.key_id, identity.private_key)  # no trust on first use


def test_console_cookies_are_secure_over_https(https_hub: tuple[LiveHub, str, Path]) -> None:
    hub, _, certfile = https_hub
    with ServerThread(create_console_app(hub.settings), tls=tls_options(hub.settings)) as console:
        page = requests.get(console.url + "/admin/login", verify=str(certfile), timeout=10)
        assert page.status_code == 200 and CSRF.search(page.text)
        assert "strict-transport-security" in page.headers
        assert re.search(r"(?i);\s*secure", page.headers["set-cookie"])
