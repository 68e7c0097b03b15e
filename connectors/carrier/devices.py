"""The register of carrier devices: which CTWing/OneNET device is which hub device, in whose home.

It comes from the installer's commissioning list (CSV: carrier, product_id, carrier_device_id, imei,
device_id, household_id, building, unit, detector, cover_type), imported by
`neuron inbox devices FILE.csv`, and is kept only encrypted (AES-256-GCM under a key derived from the
master secret, `HubKeys.encrypt_at_rest`): it binds in-home detectors to households.

Lookup prefers the carrier's own device id (present on every CTWing message and OneNET datapoint)
over the IMEI (absent from CTWing online/offline reports; `IMEI` or `imei` in integrations).
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kernel.errors import ConfigError

PURPOSE = "carrier-devices"
AAD = b"neuron carrier device register v1"
FAMILIES = {"home_safety": "home-safety", "manhole_covers": "manhole"}
DETECTORS = {"smoke", "gas"}
COVER_TYPES = {"sewage", "rainwater", "power", "telecom", "gas"}


class AtRest(Protocol):
    def encrypt_at_rest(self, purpose: str, plaintext: bytes, aad: bytes, *context: str) -> bytes: ...

    def decrypt_at_rest(self, purpose: str, blob: bytes, aad: bytes, *context: str, what: str) -> bytes: ...


@dataclass(frozen=True)
class HubDevice:
    """A registered device: its hub id, stream and the fields every message of it carries."""

    carrier: str
    product_id: str
    carrier_device_id: str
    imei: str
    device_id: str
    stream: str
    fixed: dict[str, Any] = field(
        default_factory=dict, hash=False
    )  # household_id, building, unit, detector | cover_type

    @property
    def family(self) -> str:
        return FAMILIES[self.stream]


class DeviceRegister:
    """Every registered carrier device, looked up by carrier id or IMEI."""

    def __init__(self, devices: list[HubDevice]) -> None:
        self.devices = devices
        self._by_id = {(d.carrier, d.carrier_device_id): d for d in devices}
        self._by_imei = {d.imei: d for d in devices if d.imei}

    def __len__(self) -> int:
        return len(self.devices)

    def find(self, carrier: str, carrier_device_id: object, imei: object = None) -> HubDevice | None:
        found = self._by_id.get((carrier, str(carrier_device_id)))
        if found is None and isinstance(imei, str):
            found = self._by_imei.get(imei)
        return found

    @classmethod
    def from_csv(cls, text: str) -> DeviceRegister:
        """Parse the commissioning list; ConfigError naming the line and column of the first problem."""
        devices = []
        for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
            devices.append(_device(line, row))
        return cls(devices)

    def seal(self, keys: AtRest) -> bytes:
        rows = [{**vars(d), "fixed": d.fixed} for d in self.devices]
        return keys.encrypt_at_rest(PURPOSE, json.dumps(rows).encode(), AAD)

    @classmethod
    def open(cls, keys: AtRest, blob: bytes) -> DeviceRegister:
        rows = json.loads(keys.decrypt_at_rest(PURPOSE, blob, AAD, what="the carrier device register"))
        return cls([HubDevice(**row) for row in rows])

    def save(self, keys: AtRest, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(self.seal(keys))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)

    @classmethod
    def load(cls, keys: AtRest, path: Path) -> DeviceRegister:
        if not path.exists():
            return cls([])
        return cls.open(keys, path.read_bytes())


def _device(line: int, row: dict[str, str]) -> HubDevice:
    def need(name: str) -> str:
        value = (row.get(name) or "").strip()
        if not value:
            raise ConfigError(f"device list line {line}: column {name} is empty")
        return value

    carrier = need("carrier")
    if carrier not in ("ctwing", "onenet"):
        raise ConfigError(f"device list line {line}: column carrier must be ctwing or onenet")
    imei = (row.get("imei") or "").strip()
    if imei and not (imei.isdigit() and len(imei) == 15):
        raise ConfigError(f"device list line {line}: column imei is not 15 digits")
    detector = (row.get("detector") or "").strip()
    if detector:
        if detector not in DETECTORS:
            raise ConfigError(f"device list line {line}: column detector must be smoke or gas")
        try:
            fixed: dict[str, Any] = {
                "household_id": need("household_id"), "building": int(need("building")),
                "unit": int(need("unit")), "detector": detector,
            }  # fmt: skip
        except ValueError:
            raise ConfigError(f"device list line {line}: columns building and unit must be numbers") from None
        stream = "home_safety"
    else:
        cover_type = need("cover_type")
        if cover_type not in COVER_TYPES:
            raise ConfigError(f"device list line {line}: column cover_type is not a known cover type")
        fixed, stream = {"cover_type": cover_type}, "manhole_covers"
    return HubDevice(carrier, need("product_id"), need("carrier_device_id"), imei, need("device_id"), stream, fixed)
