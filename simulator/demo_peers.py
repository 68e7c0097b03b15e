"""The demo's peers beside the city brain's NGSI-LD broker, in its live part (`neuron up`):

- the GA/T 1400 cascade: public security's upper VIID platform (视图库, simulator/viid_upper.py)
  on loopback; the hub's `[viid]` points at it, so `neuron up` runs `neuron viid`. Once the hub
  answers as lower platform, the upper subscribes to its motor vehicles (as the police's duty
  officer would) and every pass the parking vendor records flows up, through public security's
  policy (the plate sealed to its X25519 key). Each notification the upper acknowledged is kept
  in `<home>/upstream/viid.ndjson`: ids, pass time, gate, the plate as it arrived (its alias and
  whether the sealed value opens with the police's key) — never the plate itself.
- the carrier IoT inbox: `[inbox]` on a free port (a CTWing path secret, a OneNET token), the
  carrier devices registered as `neuron inbox devices` does, so `neuron up` runs `neuron inbox`;
  once it answers, the simulator's CTWing/OneNET pusher (`python -m simulator.carrier_push`)
  pushes Music Square's NB-IoT smoke and gas detectors and manhole covers into it, and their
  alarms go through the community broker and the relay like the MQTT devices' ones.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from kernel.errors import IntegrityError
from kernel.settings import Settings
from privacy.seal import PREFIX, open_sealed
from simulator.viid_upper import LOCAL, OK, UpperConfig, UpperPlatform

REPO_ROOT = Path(__file__).resolve().parents[1]
POLICE = "public_security"
PASSES_FEED = "traffic.vehicle_passes"
CARRIER_SEED = 7  # the community's seed: the same households as the MQTT devices
# Both carriers together: an alarm about every 100 s (2 % of reports), each device every ~30 min.
CARRIER_RATE = 0.5
CARRIER_HOURS = 8


def free_port() -> int:
    from neuron.up import free_port as up_free_port

    return up_free_port()


class AckLog:
    """The upper platform's record of what it acknowledged, one line per notification."""

    def __init__(self, path: Path) -> None:
        self.path, self.count = path, 0
        self._lock = threading.Lock()
        self.opener: Callable[[str], bool] | None = None  # whether a sealed plate opens with the police's key

    def write(self, items: list[dict[str, Any]]) -> None:
        lines = [json.dumps(self._line(item), ensure_ascii=False) for item in items]
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
            self.count += len(lines)

    def _line(self, item: dict[str, Any]) -> dict[str, Any]:
        vehicles = []
        for v in item.get("MotorVehicleObjectList", {}).get("MotorVehicleObject", []):
            sealed = str(v.get("PlateNoSealed", ""))
            vehicles.append(
                {
                    "MotorVehicleID": v.get("MotorVehicleID"),
                    "PassTime": v.get("PassTime"),
                    "TollgateID": v.get("TollgateID"),
                    "PlateNo": v.get("PlateNo"),  # GA/T 1400's field: an alias of the sealed plate
                    "plate_sealed": sealed.startswith(PREFIX + "."),
                    "plate_opens_with_police_key": bool(sealed and self.opener and self.opener(sealed)),
                }
            )
        return {
            "acknowledged_at": datetime.now(LOCAL).isoformat(timespec="seconds"),
            "NotificationID": item.get("NotificationID"),
            "SubscribeID": item.get("SubscribeID"),
            "vehicles": vehicles,
        }


class DemoPeers:
    """The upper VIID platform (started at once: the hub's config names it) and what feeds the
    cascade and the inbox once `neuron up` runs them (`feed()`); `stop()` ends all of it."""

    def __init__(self, home: Path) -> None:
        folder = home / "upstream"
        folder.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.acks = AckLog(folder / "viid.ndjson")
        self.viid_password = secrets.token_urlsafe(16)
        config = UpperConfig(password=self.viid_password, on_acknowledged=self.acks.write)
        self.upper = UpperPlatform(config)
        self.viid_port = free_port()
        self.inbox_port = free_port()
        while self.inbox_port == self.viid_port:
            self.inbox_port = free_port()
        self.ctwing_secret, self.onenet_token = secrets.token_urlsafe(12), secrets.token_urlsafe(16)
        self.subscription: str | None = None
        self.pusher: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> DemoPeers:
        self.upper.start()
        return self

    def __enter__(self) -> DemoPeers:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- the hub's side -------------------------------------------------------------------------

    @property
    def hub_viid_url(self) -> str:
        """Where the upper reaches the hub as lower platform (`neuron viid`'s listener)."""
        return f"http://127.0.0.1:{self.viid_port}"

    @property
    def inbox_url(self) -> str:
        return f"http://127.0.0.1:{self.inbox_port}"

    def hub_toml_lines(self) -> list[str]:
        """The hub's `[viid]` and `[inbox]` (the Digest password goes in the environment: `env()`)."""
        viid = {
            "upper_url": self.upper.url,
            "upper_id": self.upper.config.upper_id,
            "device_id": self.upper.config.lower_id,
            "listen_port": self.viid_port,
            "consumer": POLICE,  # its sharing policy decides what each pass carries
        }
        inbox = {
            "enabled": True,
            "port": self.inbox_port,
            "ctwing_path_secret": self.ctwing_secret,
            "onenet_token": self.onenet_token,
            "sqlite_synchronous": "normal",  # a demo on a loaded laptop: no fsync per push
        }
        lines = ["# GA/T 1400 cascade to public security's (simulated) VIID platform: `neuron viid`."]
        lines += ["[viid]", *(f"{k} = {json.dumps(v)}" for k, v in viid.items()), ""]
        lines += ["# CTWing/OneNET pushes of the NB-IoT detectors and manhole covers: `neuron inbox`."]
        lines += ["[inbox]", *(f"{k} = {json.dumps(v)}" for k, v in inbox.items()), ""]
        return lines

    def env(self) -> dict[str, str]:
        return {"NEURON_VIID__PASSWORD": self.viid_password}

    def register_devices(self, settings: Settings) -> int:
        """The installer's list of carrier devices, kept encrypted (what `neuron inbox devices` does)."""
        from connectors.carrier.devices import DeviceRegister
        from privacy.keys import HubKeys
        from simulator.carrier_push import carrier_fleet, registry_csv

        register = DeviceRegister.from_csv(registry_csv(carrier_fleet(CARRIER_SEED)))
        register.save(HubKeys.load(settings), settings.state_path / settings.inbox.devices_file)
        return len(register)

    def open_plates_with(self, key_file: Path) -> None:
        """Public security's X25519 key: the upper checks each plate opens with it (as the police would)."""
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        assert isinstance(key, X25519PrivateKey)

        def open_plate(value: str) -> str | None:
            if not value.startswith(PREFIX + "."):
                return value
            try:
                return open_sealed(value, key, "plate_no", consumer=POLICE, feed=PASSES_FEED)
            except IntegrityError:
                return None

        self.upper.config.plate_opener = open_plate
        self.acks.opener = lambda sealed: open_plate(sealed) is not None

    # --- the live part ----------------------------------------------------------------------------

    def feed(self) -> None:
        """In the background: subscribe once the hub's `neuron viid` answers, push once its inbox does."""
        for target, name in ((self._subscribe, "viid-subscribe"), (self._push, "carrier-push")):
            thread = threading.Thread(target=target, name=f"demo-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def subscribe_once(self) -> bool:
        """One attempt at the motor-vehicle subscription (1 = 卡口 records); True once accepted."""
        try:
            sid, code = self.upper.subscribe(self.hub_viid_url, title="机动车过车订阅")
        except (requests.RequestException, KeyError, ValueError):
            return False  # the hub is not up yet, or not registered with the upper yet
        if code == OK:
            self.subscription = sid
        return code == OK

    def _subscribe(self) -> None:
        while not self._stop.is_set() and not self.subscribe_once():
            self._stop.wait(2)

    def inbox_answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.inbox_url + "/healthz", timeout=2) as reply:
                return int(reply.status) == 200
        except OSError:
            return False

    def pusher_argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "simulator.carrier_push",
            "--ctwing-url",
            f"{self.inbox_url}/carrier/ctwing/{self.ctwing_secret}",
            "--onenet-url",
            f"{self.inbox_url}/carrier/onenet",
            "--rate",
            str(CARRIER_RATE),
            "--duration",
            str(CARRIER_HOURS * 3600),
            "--seed",
            str(CARRIER_SEED),
            "--realtime",
        ]

    def _push(self) -> None:
        while not self._stop.is_set() and not self.inbox_answers():
            self._stop.wait(2)
        if self._stop.is_set():
            return
        log_dir = self.home / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "ONENET_TOKEN": self.onenet_token}  # not on the command line
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        with open(log_dir / "carrier-push.log", "ab") as log:
            self.pusher = subprocess.Popen(self.pusher_argv(), env=env, stdout=log, stderr=subprocess.STDOUT)

    def try_next_lines(self) -> list[str]:
        return [
            f"tail -f {self.acks.path}   # public security's VIID platform: each notification it acknowledged"
            " (GA/T 1400 cascade, `neuron viid`), plates sealed to its key",
            f"curl -s {self.inbox_url}/healthz   # the carrier inbox (`neuron inbox`): CTWing/OneNET pushes"
            " received, processed, alarms published to the relay",
        ]

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        if self.pusher is not None and self.pusher.poll() is None:
            self.pusher.terminate()
            try:
                self.pusher.wait(10)
            except subprocess.TimeoutExpired:
                self.pusher.kill()
                self.pusher.wait()
        self.upper.stop()
