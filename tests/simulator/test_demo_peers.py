"""The demo's live part wires every peer protocol: the hub.toml `neuron demo` writes makes
`neuron up` run the cascade (`viid`), the carrier inbox, the NGSI-LD push, the collector and the
relay; and (slow) a real `neuron viid` started from that file gets a pass acknowledged by the
simulated upper VIID platform, its plate sealed to public security's key, while the carriers'
pushes to a real `neuron inbox` bring their alarms through `neuron relay` to the district."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kernel.settings import Settings, load_settings
from neuron.up import AirflowPorts, hub_services
from simulator.demo_day import Upstream, upstream_brokers, write_hub_toml
from simulator.demo_peers import DemoPeers
from simulator.live import LiveCommunity, LiveOptions

TOKENS = {"parking": "demo-parking-token", "intercom": "demo-intercom-token"}


@contextmanager
def demo_config(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Settings, DemoPeers, Path]]:
    """The simulator, the consumers' brokers and peers as `neuron demo` starts them, and the
    hub's settings read back (as `neuron up` reads them) from the hub.toml it writes."""
    options = LiveOptions(state=home / "sim", parking_port=0, intercom_port=0, ngsi_ld_port=0)
    live = LiveCommunity(options, say=lambda _: None)
    live.start()
    try:
        upstreams: dict[str, Upstream]
        with upstream_brokers(home, "putuo", "music-square") as upstreams, DemoPeers(home) as peers:
            path = write_hub_toml(home / "hub.toml", live, upstreams, TOKENS, peers)
            monkeypatch.setenv("NEURON_CONFIG", str(path))
            monkeypatch.setenv("NEURON_HOME", str(home))
            for name, value in peers.env().items():
                monkeypatch.setenv(name, value)
            yield load_settings(home=home), peers, path
    finally:
        live.close()


def test_the_demo_config_makes_neuron_up_run_every_peer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with demo_config(tmp_path, monkeypatch) as (settings, peers, path):
        names = [s.name for s in hub_services(settings, AirflowPorts.free(), serve=False, airflow=False)]
        assert {"collector", "relay", "viid", "push", "inbox"} <= set(names)
        text = path.read_text(encoding="utf-8")
        assert path.stat().st_mode & 0o777 == 0o600
        # The cascade to the upper platform the demo runs, governed by public security's policy.
        assert settings.viid.upper_url == peers.upper.url and settings.viid.consumer == "public_security"
        assert settings.viid.listen_port == peers.viid_port and settings.viid.upper_id == peers.upper.config.upper_id
        # The Digest password reaches `neuron viid` through the environment, never the file.
        assert settings.viid.password.get_secret_value() == peers.viid_password
        assert peers.viid_password not in text
        # The inbox where the carriers' pusher sends, with the OneNET token it signs with.
        assert settings.inbox.enabled and settings.inbox.port == peers.inbox_port
        assert settings.inbox.onenet_token.get_secret_value() == peers.onenet_token
        assert f"/carrier/ctwing/{peers.ctwing_secret}" in " ".join(peers.pusher_argv())
        assert settings.inbox.ctwing_path == f"/carrier/ctwing/{peers.ctwing_secret}"


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_a_pass_reaches_the_upper_platform_from_the_demo_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from privacy.keys import init_keys
    from simulator.demo import _public_security_keys
    from simulator.parking_live import LiveParking
    from simulator.server import start_parking_api
    from warehouse.migrations import migrate

    passes = LiveParking()
    with (
        demo_config(tmp_path, monkeypatch) as (settings, peers, _),
        start_parking_api(
            passes,  # type: ignore[arg-type]  # the same vendor API, with passes made on demand
            token=TOKENS["parking"],
        ) as vendor,
    ):
        init_keys(settings)
        migrate(settings.control_url)
        _public_security_keys(settings, tmp_path)
        peers.open_plates_with(tmp_path / "consumer" / "public_security.x25519.pem")
        # The hub's own command, from the demo's file; only the vendor is one making passes now.
        env = {**os.environ, "NEURON_PARKING__BASE_URL": vendor.url}
        log = tmp_path / "viid.log"
        with open(log, "wb") as out:
            hub = subprocess.Popen([sys.executable, "-m", "neuron.cli", "viid"], env=env, stdout=out, stderr=out)
        try:
            assert wait_for(peers.subscribe_once, 45), log.read_text(errors="replace")
            passes.add(3)
            assert wait_for(lambda: peers.acks.count >= 1, 30), log.read_text(errors="replace")
        finally:
            hub.terminate()
            hub.wait(30)
            passes.stop()
        lines = [json.loads(line) for line in peers.acks.path.read_text(encoding="utf-8").splitlines()]
        vehicles = [v for line in lines for v in line["vehicles"]]
        assert {line["SubscribeID"] for line in lines} == {peers.subscription}
        assert vehicles and all(v["plate_sealed"] and v["plate_opens_with_police_key"] for v in vehicles)
        raw = {r["plate_no"] for r in passes.records()}
        text = peers.acks.path.read_text(encoding="utf-8")
        assert not any(plate in text for plate in raw)  # the record keeps no plate


@pytest.mark.slow
def test_carrier_alarms_reach_the_consumers_through_the_inbox_and_the_relay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from privacy.keys import init_keys
    from warehouse.migrations import migrate

    options = LiveOptions(state=tmp_path / "sim", parking_port=0, intercom_port=0, devices=True)
    live = LiveCommunity(options, say=lambda _: None)
    live.start()
    live.stop()  # the MQTT devices quiet (their broker stays up): every alarm below is a carrier's
    try:
        with upstream_brokers(tmp_path, "putuo", "music-square") as upstreams, DemoPeers(tmp_path) as peers:
            path = write_hub_toml(tmp_path / "hub.toml", live, upstreams, TOKENS, peers)
            for name, value in {"NEURON_CONFIG": str(path), "NEURON_HOME": str(tmp_path), **peers.env()}.items():
                monkeypatch.setenv(name, value)
            env = dict(os.environ)
            settings = load_settings(home=tmp_path)
            init_keys(settings)
            migrate(settings.control_url)
            assert peers.register_devices(settings) > 800
            hub = [
                subprocess.Popen(
                    [sys.executable, "-m", "neuron.cli", command],
                    env=env,
                    stdout=open(tmp_path / f"{command}.log", "wb"),  # noqa: SIM115 (closed with the process)
                    stderr=subprocess.STDOUT,
                )
                for command in ("relay", "inbox")
            ]
            try:
                assert wait_for(peers.inbox_answers, 60)
                # The demo's pusher, faster and shorter: 60 reports in 3 s (2 % alarms, seed 7: 4 alarms).
                argv = peers.pusher_argv()
                argv[argv.index("--rate") + 1], argv[argv.index("--duration") + 1] = "20", "3"
                pushed = subprocess.run(
                    argv, env={**env, "ONENET_TOKEN": peers.onenet_token}, capture_output=True, text=True, timeout=60
                )
                assert "60 accepted" in pushed.stdout, pushed.stderr[-500:]
                district = upstreams["district"].watcher
                assert wait_for(lambda: district.count >= 1, 30), (tmp_path / "relay.log").read_text(errors="replace")
            finally:
                for proc in hub:
                    proc.terminate()
                    proc.wait(30)
    finally:
        live.close()
