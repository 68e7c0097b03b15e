"""`neuron pull` as a consumer runs it: a separate process, killed halfway (SIGKILL, nothing
to clean up with), then run again. It ends with exactly the published rows, fetching only
what it did not have."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from kernel.settings import REPO_ROOT
from tests.api.hub import LiveHub
from tests.api.lake import FEED
from tests.api.proxy import TamperingProxy
from tests.api.test_pull import published_rows, stored_rows

HELD_LIMIT = 120  # seconds: an upper bound for a stuck test, never a measure of speed


def pull_command(
    hub_url: str, key_id: str, key_file: Path, jwks_file: Path, out: Path, ca: Path | None = None
) -> list[str]:
    return [
        *(sys.executable, "-m", "neuron.cli", "pull", FEED, "--hub", hub_url, "--key-id", key_id),
        *("--private-key", str(key_file), "--jwks", str(jwks_file), "--out", str(out)),
        *(("--ca", str(ca)) if ca else ()),
    ]


def test_pull_killed_after_the_first_partition_resumes_with_exactly_the_published_rows(
    fresh_hub: LiveHub, tmp_path: Path
) -> None:
    identity = fresh_hub.identities["district"]
    key_file, jwks_file, out = tmp_path / "district.pem", tmp_path / "jwks.json", tmp_path / "pulled"
    pem = identity.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_file.write_bytes(pem)
    key_file.chmod(0o600)
    jwks_file.write_text(json.dumps(fresh_hub.jwks))
    first, *rest = fresh_hub.latest("district")

    with TamperingProxy(fresh_hub.url) as proxy:
        fresh_hub.admit(proxy.url)
        proxy.hold_after = 2  # the change log and the first partition pass; the second waits
        command = pull_command(proxy.url, identity.key_id, key_file, jwks_file, out)
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            assert proxy.held.acquire(timeout=HELD_LIMIT), "the pull never asked for its second partition"
            process.kill()
            process.wait(timeout=HELD_LIMIT)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode != 0
    assert list(stored_rows(out)) == [first.partition_key]  # the first partition, whole, and nothing else
    state = json.loads((out / ".neuron-pull" / f"{FEED}.json").read_text())
    assert state["versions"] == {first.partition_key: first.version}

    resumed = subprocess.run(
        pull_command(fresh_hub.url, identity.key_id, key_file, jwks_file, out, fresh_hub.ca),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=HELD_LIMIT,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{len(rest)} partition version(s)" in resumed.stdout  # only what it did not have
    assert stored_rows(out) == published_rows(fresh_hub, "district")
