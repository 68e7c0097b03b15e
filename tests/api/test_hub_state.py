"""The hub's per-app state: a policy's fingerprint is hashed once, and follows a replaced policy."""

from __future__ import annotations

from tests.api.hub import LiveHub


def test_a_policy_fingerprint_is_computed_once_and_a_replaced_policy_gets_its_own(live_hub: LiveHub) -> None:
    hub = live_hub.app.state.hub
    district = hub.policies["district"]
    assert hub.fingerprint(district) == district.fingerprint
    assert hub.fingerprint(district) is hub.fingerprint(district)  # the cached string, not a new hash
    changed = district.model_copy(update={"retention_days": district.retention_days + 1})
    assert hub.fingerprint(changed) == changed.fingerprint != district.fingerprint
