"""Every path of in-home devices' data states its legal basis in the policy (issue 16, item 3):
a policy that does not is refused when it loads, in one line naming the file, the line and what
to add; the basis per consumer × path is listed for the console."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kernel.errors import ConfigError
from kernel.relay_settings import RelaySettings
from privacy.basis import WHOLE_FEED, basis_table
from privacy.policy import load_policies, load_policy_file
from tests.conftest import REPO_ROOT

SHIPPED = REPO_ROOT / "config" / "policies"


def edited(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """A copy of a shipped policy with one passage changed."""
    path = tmp_path / f"{name}.yaml"
    shutil.copy(SHIPPED / f"{name}.yaml", path)
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


def refusal(path: Path) -> str:
    with pytest.raises(ConfigError) as refused:
        load_policy_file(path)
    message = str(refused.value)
    assert "\n" not in message
    return message


def test_a_feed_of_in_home_alarms_without_a_basis_is_refused_naming_file_line_and_what_to_add(tmp_path: Path) -> None:
    path = edited(tmp_path, "public_security", "    basis: consent\n", "")
    message = refusal(path)
    assert message.startswith(f"{path}:{line_of(path, 'safety.alarms:')}: ")
    assert "no legal basis" in message and "add `basis: {fall: consent, gas: consent" in message
    assert "under feeds.safety.alarms" in message and "vital_interest for a live smoke, gas or fall alarm" in message


def test_a_category_left_out_of_the_basis_is_named(tmp_path: Path) -> None:
    path = edited(tmp_path, "district", "basis: {smoke: consent, gas: consent}", "basis: {smoke: consent}")
    message = refusal(path)
    assert message.startswith(f"{path}:{line_of(path, 'basis: {smoke: consent}')}: ")
    assert "in-home alarms (gas)" in message


def test_the_care_feed_goes_on_consent_only(tmp_path: Path) -> None:
    missing = refusal(edited(tmp_path, "district", "    basis: consent  #", "    #"))
    assert "care.elderly_daily" in missing and "add `basis: consent`" in missing
    vital = refusal(edited(tmp_path, "district", "    basis: consent  #", "    basis: vital_interest  #"))
    assert "may go on consent only" in vital


def test_vital_interest_covers_live_smoke_gas_and_falls_only(tmp_path: Path) -> None:
    message = refusal(edited(tmp_path, "district", "sos: consent, heart_rate", "sos: vital_interest, heart_rate"))
    assert "sos may go on consent only" in message


def test_a_relay_section_must_state_every_in_home_category(tmp_path: Path) -> None:
    path = edited(tmp_path, "district", ", heart_rate: consent}", "}")
    message = refusal(path)
    assert message.startswith(f"{path}:{line_of(path, 'basis: {smoke: vital_interest')}: ")
    assert (
        "relay carries in-home alarms (heart_rate)" in message and "add `heart_rate: consent` to relay.basis" in message
    )


def test_a_feed_without_in_home_data_takes_no_basis(tmp_path: Path) -> None:
    path = edited(
        tmp_path, "district", "  traffic.vehicle_flow_hourly:\n", "  traffic.vehicle_flow_hourly:\n    basis: consent\n"
    )
    assert "carries no in-home data" in refusal(path)


def test_the_basis_of_every_consumer_and_path_is_listed() -> None:
    policies = load_policies(SHIPPED)
    table = basis_table(policies, RelaySettings().upstreams)
    rows = {(r.consumer, r.path, r.category): r.basis for r in table}
    assert rows[("district", "feed:care.elderly_daily", WHOLE_FEED)] == "consent"
    assert rows[("district", "feed:safety.alarms", "smoke")] == "consent"
    assert rows[("district", "feed:safety.alarms", "fall")] is None  # excluded: not sent at all
    assert rows[("district", "relay:district", "fall")] == "vital_interest"
    assert rows[("district", "relay:district", "sos")] == "consent"
    assert rows[("public_security", "feed:safety.alarms", "heart_rate")] == "consent"
    assert rows[("public_security", "relay:public_security", "gas")] == "vital_interest"
    assert not any(r.consumer == "open_data" for r in table)  # it gets no in-home data
    assert all(r.consent_function in ("smoke_gas", "elderly_care") for r in table)
