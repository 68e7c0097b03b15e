"""Key rotation end to end (issue 17): the running API follows `neuron keys rotate` without a
restart, and every partition published before the rotation still verifies once the retired
key has left the JWKS, because rotation re-signed its manifest with the new key."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from api.client import verify_response
from neuron.housekeeping import keys_resign, keys_rotate
from privacy.jws import verify_json
from relay.destinations import wait_for
from tests.api.hub import PLAN, LiveHub, send
from tests.api.lake import FEED
from warehouse.manifests import signed_by


def jwks_answer(hub: LiveHub) -> requests.Response:
    return send(requests.Request("GET", hub.url + "/.well-known/jwks.json").prepare())


def served_jwks(hub: LiveHub) -> dict[str, object]:
    return dict(jwks_answer(hub).json())


def kids(jwks: dict[str, object]) -> set[str]:
    return {str(k["kid"]) for k in jwks["keys"]}  # type: ignore[attr-defined]


def retire_long_ago(hub: LiveHub, kid: str, days: int) -> None:
    """Move a retired key's retirement `days` back, as if that much time had passed since."""
    index_file = hub.settings.keys_dir / "signing" / "index.json"
    index = json.loads(index_file.read_text())
    for entry in index:
        if entry["kid"] == kid:
            entry["retired_at"] = (datetime.now(UTC) - timedelta(days=days)).isoformat()
    index_file.write_text(json.dumps(index))


def test_the_api_follows_a_rotation_and_old_partitions_verify_after_the_old_key_left(
    fresh_hub: LiveHub, tmp_path: Path
) -> None:
    hub = fresh_hub
    old = hub.signing_key.kid
    done = keys_rotate(hub.settings)  # what `neuron keys rotate` does, in another "process"
    new = done["signing_key"]
    assert new != old and done["manifests_resigned"] == len(PLAN)
    assert keys_resign(hub.settings)["resigned"] == 0  # idempotent: nothing left to re-sign

    # The running API serves the new key and signs its answers with it, without a restart.
    assert wait_for(lambda: new in kids(served_jwks(hub)), 10)
    answer = jwks_answer(hub)
    assert f'keyid="{new}"' in answer.headers["Signature-Input"]

    # Past signature_lifetime_days the retired key leaves the JWKS ...
    retire_long_ago(hub, old, days=hub.settings.signature_lifetime_days + 1)
    assert wait_for(lambda: kids(served_jwks(hub)) == {new}, 10)
    current = served_jwks(hub)
    verify_response(answer, current)
    # ... and every partition published under the old key verifies against what is left.
    with hub.client("district", jwks=current) as client:
        changes, _ = client.changes(FEED)
        assert changes
        for change in changes:
            dest = tmp_path / f"{change['id']}.parquet"
            download = client.download_partition(FEED, change["id"], dest, (change["partition"], change["version"]))
            assert download.manifest["sha256"] == change["sha256"]
    # The manifests in the lake were re-signed too (a consumer may read them from a copy of it).
    for manifest in hub.settings.lake_path.rglob("*.manifest.jws"):
        token = manifest.read_text()
        assert signed_by(token) == new
        verify_json(token, current)
