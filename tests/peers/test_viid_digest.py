"""Register, keepalive and the clock against the simulated upper VIID platform: HTTP Digest with
single-use nonces, stale nonces answered again, a restarted upper that has forgotten us."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from kernel.viid_settings import ViidSettings
from peers.viid.client import CredentialsRefused, NotRegistered, UpperClient
from peers.viid.digest import authorization, parse_challenge
from peers.viid.protocol import status_code, status_list
from simulator.viid_upper import UpperConfig, UpperPlatform

PASSWORD = "digest-test-password"
LOWER = UpperConfig.lower_id


@pytest.fixture
def upper() -> Iterator[UpperPlatform]:
    with UpperPlatform(UpperConfig(password=PASSWORD)) as platform:
        yield platform


def client_for(upper: UpperPlatform, password: str = PASSWORD) -> UpperClient:
    return UpperClient(ViidSettings(upper_url=upper.url, device_id=LOWER, password=password))  # type: ignore[arg-type]


def test_register_answers_the_digest_challenge(upper: UpperPlatform) -> None:
    client = client_for(upper)
    client.register()
    assert upper.received.registrations == 1
    assert (upper.digest.stats.challenges, upper.digest.stats.accepted) == (1, 1)
    client.keepalive()
    assert upper.received.keepalives == 1
    client.unregister()  # a fresh challenge of its own: the Register nonce is never reused
    assert upper.received.unregistrations == 1
    assert upper.digest.stats.challenges == 2
    with pytest.raises(NotRegistered):
        client.keepalive()


def test_a_stale_nonce_is_answered_with_the_new_one(upper: UpperPlatform) -> None:
    upper.digest.expire_next = 1
    client_for(upper).register()
    assert upper.digest.stats.stale == 1
    assert upper.digest.stats.challenges == 2  # the first, and the one sent with stale=true
    assert upper.received.registrations == 1


def test_nonces_are_single_use(upper: UpperPlatform) -> None:
    url, path = upper.url + "/VIID/System/Register", "/VIID/System/Register"
    body = {"RegisterObject": {"DeviceID": LOWER}}
    headers = {"Content-Type": "application/VIID+JSON"}
    first = requests.post(url, json=body, headers=headers, timeout=5)
    assert first.status_code == 401
    challenge = parse_challenge(first.headers["WWW-Authenticate"])
    assert challenge is not None and not challenge.stale
    auth = authorization(challenge, "POST", path, LOWER, PASSWORD)
    ok = requests.post(url, json=body, headers=headers | {"Authorization": auth}, timeout=5)
    assert ok.status_code == 200 and status_code(status_list(ok.json())[0]) == 0
    replay = requests.post(url, json=body, headers=headers | {"Authorization": auth}, timeout=5)
    assert replay.status_code == 401
    again = parse_challenge(replay.headers["WWW-Authenticate"])
    assert again is not None and again.stale and again.nonce != challenge.nonce


def test_wrong_credentials_are_refused_not_retried(upper: UpperPlatform) -> None:
    with pytest.raises(CredentialsRefused, match="credentials refused"):
        client_for(upper, "wrong").register()
    assert upper.digest.stats.denied == 1 and upper.received.registrations == 0


def test_a_restarted_upper_has_forgotten_the_registration(upper: UpperPlatform) -> None:
    client = client_for(upper)
    client.register()
    upper.restart()
    with pytest.raises(NotRegistered):
        client.keepalive()
    client.register()
    client.keepalive()
    assert upper.received.registrations == 2


def test_clock_check_and_status_codes(upper: UpperPlatform) -> None:
    skew = client_for(upper).clock_skew()
    assert skew is not None and abs(skew) < 5
    assert status_code({"StatusCode": "0"}) == 0 and status_code({"StatusCode": 8}) == 8
    assert status_code({"StatusCode": True}) is None


def test_neuron_simulate_can_serve_the_upper(monkeypatch: pytest.MonkeyPatch) -> None:
    from peers.viid.server import free_port
    from simulator.cli import _serve_viid_upper

    monkeypatch.setenv("NEURON_VIID__PASSWORD", PASSWORD)
    port = free_port()
    close = _serve_viid_upper(port, "")
    try:
        client = UpperClient(ViidSettings(upper_url=f"http://127.0.0.1:{port}", device_id=LOWER, password=PASSWORD))  # type: ignore[arg-type]
        client.register()
        client.keepalive()
    finally:
        close()
