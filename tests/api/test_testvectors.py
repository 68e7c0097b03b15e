"""clients/testvectors: generated from the hub's code, and verified by a second implementation
that shares nothing with it (Node's built-in crypto), so a Java or Go team can trust them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from neuron_consumer.keys import b64u_decode, pinned_keys, thumbprint, verify_jws
from neuron_consumer.unseal import unseal

HERE = Path(__file__).resolve().parents[2] / "clients" / "testvectors"
NODE = shutil.which("node")


def _vectors() -> dict:  # type: ignore[type-arg]
    return json.loads((HERE / "vectors.json").read_text(encoding="utf-8"))


def test_the_checked_in_vectors_are_what_the_hubs_code_produces_now() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate_vectors", HERE / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render() == (HERE / "vectors.json").read_text(encoding="utf-8"), "run clients/testvectors/generate.py"


def test_the_python_consumer_kit_verifies_the_manifest_and_opens_the_sealed_value() -> None:
    v = _vectors()
    keys = pinned_keys(v["keys"]["hub_jwks"], {thumbprint(k) for k in v["keys"]["hub_jwks"]["keys"]})
    assert verify_jws(v["manifest_jws"]["token"], keys) == v["manifest_jws"]["payload"]
    sealed = v["hpke_sealed"]
    police = X25519PrivateKey.from_private_bytes(bytes.fromhex(v["keys"]["public_security_x25519"]["private_hex"]))
    assert unseal(sealed["token"], police, sealed["consumer"], sealed["feed"], sealed["field"]) == sealed["plaintext"]
    assert b64u_decode(sealed["token"].split(".")[2]).hex() == sealed["enc_hex"] + sealed["ct_hex"]


@pytest.mark.skipif(NODE is None, reason="node is not installed: the second implementation cannot run here")
def test_node_verifies_every_vector() -> None:
    done = subprocess.run([str(NODE), str(HERE / "check.mjs")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all test vectors verify" in done.stdout and "FAIL" not in done.stdout


@pytest.mark.skipif(NODE is None, reason="node is not installed: the second implementation cannot run here")
@pytest.mark.parametrize(
    ("section", "field", "old", "new", "expected_failure"),
    [
        ("signed_request", "url", "limit=100", "limit=101", "request: Ed25519 signature verifies"),
        ("signed_response", "body", "OjR9", "OjV9", "response: Content-Digest matches the body"),
        ("hpke_sealed", "consumer", "public_security", "district", "hpke: opens to the plaintext"),
    ],
)
def test_node_rejects_a_tampered_vector(
    tmp_path: Path, section: str, field: str, old: str, new: str, expected_failure: str
) -> None:
    v = _vectors()
    assert old in v[section][field]
    v[section][field] = v[section][field].replace(old, new)
    copy = tmp_path / "vectors.json"
    copy.write_text(json.dumps(v, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run([str(NODE), str(HERE / "check.mjs"), str(copy)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and f"FAIL {expected_failure}" in done.stdout
