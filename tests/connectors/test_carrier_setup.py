"""Setting the inbox up: `neuron up` runs it when configured, the installer's device list is kept
only encrypted, a bad list is one actionable line, the decoders name fields, never values."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.carrier.decoders import DecodeError, ctwing_gas_frame, ctwing_smoke_servicedata
from connectors.carrier.devices import DeviceRegister
from kernel.inbox_settings import InboxSettings
from kernel.settings import load_settings
from neuron.cli import app
from neuron.up import AirflowPorts, hub_services
from privacy.keys import HubKeys, init_keys
from simulator.carrier_push import gas_frame, registry_csv
from tests.conftest import make_settings
from tests.connectors.carrier_helpers import small_fleet


def test_neuron_up_runs_the_inbox_only_when_enabled(tmp_path: Path) -> None:
    ports = AirflowPorts(api=18080, scheduler_health=18974, log_server=18793)
    off = load_settings(home=tmp_path, inbox=InboxSettings())
    assert "inbox" not in [s.name for s in hub_services(off, ports)]
    on = load_settings(home=tmp_path, inbox=InboxSettings(enabled=True, port=9301))
    service = next(s for s in hub_services(on, ports) if s.name == "inbox")
    assert service.argv[-1] == "inbox" and service.health is not None


def test_device_list_is_imported_encrypted_and_errors_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = make_settings(tmp_path / "hub")
    init_keys(hub)
    devices = small_fleet()
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text(registry_csv(devices), encoding="utf-8")
    monkeypatch.setenv("NEURON_HOME", str(hub.home))
    monkeypatch.setenv("NEURON_STATE_DIR", "var")
    result = CliRunner().invoke(app, ["inbox", "devices", str(csv_file)])
    assert result.exit_code == 0, result.output
    sealed = hub.state_path / InboxSettings().devices_file
    blob = sealed.read_bytes()
    assert all(d.imei.encode() not in blob and d.hub_device_id.encode() not in blob for d in devices)
    register = DeviceRegister.load(HubKeys.load(hub), sealed)
    assert register.find("ctwing", devices[0].carrier_device_id) is not None
    assert register.find("onenet", "nope", devices[-1].imei) is not None  # by IMEI when the id is unknown

    csv_file.write_text(registry_csv(devices).replace(devices[0].imei, "12345"), encoding="utf-8")
    result = CliRunner().invoke(app, ["inbox", "devices", str(csv_file)])
    assert result.exit_code == 1
    assert "line 2: column imei is not 15 digits" in result.output and "Traceback" not in result.output


def test_decoders_name_the_field_never_the_value() -> None:
    frame = bytearray(gas_frame({"gas_lel_pct": 12.5, "alarm": True, "battery_pct": 77, "rsrp": -99}))
    good = {"timestamp": 1_700_000_000_000, "payload": {"APPdata": base64.b64encode(bytes(frame)).decode()}}
    reading = ctwing_gas_frame(good)
    assert reading.alarm == "gas" and reading.values["gas_lel_pct"] == 12.5 and reading.values["battery_pct"] == 77
    frame[2] ^= 0xFF
    with pytest.raises(DecodeError, match=r"^payload\.APPdata frame checksum does not match$"):
        ctwing_gas_frame({**good, "payload": {"APPdata": base64.b64encode(bytes(frame)).decode()}})
    with pytest.raises(DecodeError, match=r"^payload\.serviceData\.Alarm_Status is missing or not a number$"):
        ctwing_smoke_servicedata({**good, "payload": {"serviceData": {"Alarm_Status": "2"}}})
    smoke = ctwing_smoke_servicedata({**good, "payload": {"serviceData": {"Alarm_Status": 2, "Battery_Level": 255}}})
    assert smoke.alarm == "smoke" and smoke.values["battery_pct"] is None  # 255: the firmware's "unknown"
