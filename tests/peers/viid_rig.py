"""A private cascade rig: a live parking vendor, the simulated upper VIID platform (with public
security's X25519 key, so it opens the plates sealed to it), and a hub whose `[viid]` points at it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from api.consumers import register_consumer
from kernel.errors import IntegrityError
from kernel.settings import Settings
from kernel.viid_settings import ViidSettings
from privacy.keys import init_keys
from privacy.seal import PREFIX, open_sealed
from simulator.parking_live import LiveParking
from simulator.server import RunningServer, start_parking_api
from simulator.viid_upper import LOCAL, UpperConfig, UpperPlatform
from tests.conftest import TOKEN, make_settings
from warehouse.migrations import migrate
from warehouse.recipients import register_encryption_key

PASSWORD = "test-digest-password"
FAST = {
    "poll_seconds": 0.05,
    "poll_overlap_seconds": 5.0,
    "keepalive_seconds": 0.5,
    "retry_min_seconds": 0.01,
    "retry_max_seconds": 0.2,
    "timeout_seconds": 2.0,
}


def plate_opener(key: X25519PrivateKey) -> Any:
    """How public security reads PlateNo: a value sealed to its key is opened; None if it does not open."""

    def open_plate(value: str) -> str | None:
        if not value.startswith(PREFIX + "."):
            return value
        try:
            return open_sealed(value, key, "plate_no", consumer="public_security", feed="traffic.vehicle_passes")
        except IntegrityError:
            return None

    return open_plate


def pem(public: Any) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass
class Rig:
    settings: Settings
    upper: UpperPlatform
    live: LiveParking
    vendor: RunningServer
    police: X25519PrivateKey

    def expected(self) -> Counter[tuple[str, str]]:
        """(plate, local pass time) of every pass the vendor made."""
        found: Counter[tuple[str, str]] = Counter()
        for r in self.live.records():
            when = datetime.fromisoformat(r["pass_time"]).astimezone(LOCAL).strftime("%Y%m%d%H%M%S")
            found[(r["plate_no"], when)] += 1
        return found

    def received(self) -> Counter[tuple[str, str]]:
        """(opened plate, PassTime) of every distinct vehicle the upper accepted."""
        opener = plate_opener(self.police)
        with self.upper.lock:
            vehicles = list(self.upper.received.vehicles.values())
        return Counter((str(opener(v.get("PlateNoSealed", v["PlateNo"]))), str(v["PassTime"])) for v in vehicles)


def hub_settings(home: Path, vendor_url: str, upper_url: str, control_url: str = "", **viid: Any) -> Settings:
    config = ViidSettings(upper_url=upper_url, password=PASSWORD, listen_port=0, **(FAST | viid))  # type: ignore[arg-type]
    return make_settings(home, vendor_url, viid=config, control_db_url=control_url)


@contextmanager
def viid_rig(tmp_path: Path, control_url: str = "", upper: UpperConfig | None = None, **viid: Any) -> Iterator[Rig]:
    """The rig; `control_url`: an already migrated control database (else one is made)."""
    live = LiveParking()
    police = X25519PrivateKey.generate()
    config = upper or UpperConfig()
    config.password, config.plate_opener = PASSWORD, plate_opener(police)
    # LiveParking serves the same API as the day simulator (records_updated_between, faults, seed).
    vendor_api = start_parking_api(live, token=TOKEN)  # type: ignore[arg-type]
    with vendor_api as vendor, UpperPlatform(config) as platform:
        settings = hub_settings(tmp_path / "hub", vendor.url, platform.url, control_url, **viid)
        init_keys(settings)
        if not control_url:
            migrate(settings.control_url)
        register_consumer(settings, "public_security", pem(Ed25519PrivateKey.generate().public_key()))
        register_encryption_key(settings, "public_security", pem(police.public_key()))
        try:
            yield Rig(settings, platform, live, vendor, police)
        finally:
            live.stop()
