"""The standalone consumer kit (clients/python) against a real hub on loopback: pull (pinned,
incremental, verified), verify, unseal, verify-ballot; and that the pulled folder is one
dataset pandas, pyarrow.dataset, DuckDB and polars read as it is."""

from __future__ import annotations

import ast
import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from neuron_consumer import IntegrityError
from neuron_consumer.ballot import verify_ballot as kit_verify_ballot
from neuron_consumer.cli import main
from neuron_consumer.client import Hub
from neuron_consumer.dataset import STATE_DIR
from neuron_consumer.keys import thumbprint, verify_jws
from neuron_consumer.pull import pull
from neuron_consumer.unseal import unseal
from neuron_consumer.verify import verify_folder

from privacy.seal import Recipient, seal
from tests.api.consumer_kit import KIT_SRC
from tests.api.hub import FLOW_FIELDS, LiveHub
from tests.api.lake import COMMUNITY, FEED, flow_rows, publish_table
from tests.api.proxy import TamperingProxy, flip_last_body_byte
from warehouse.merkle import ballot_leaf, inclusion_proof, merkle_root, new_receipt, receipt_commitment


@contextmanager
def monkeypatch_sleep() -> Iterator[None]:
    """The kit's retries without their waits."""
    import neuron_consumer.client as kit_client

    original = kit_client.wait
    kit_client.wait = lambda seconds: None
    try:
        yield
    finally:
        kit_client.wait = original


def pins(hub: LiveHub) -> set[str]:
    return {thumbprint(k) for k in hub.jwks["keys"]}


def kit(hub: LiveHub, consumer: str = "district", url: str | None = None, **options: object) -> Hub:
    identity = hub.identities[consumer]
    options.setdefault("ca", hub.ca)  # the channel pinned to the hub's certificate
    return Hub(url or hub.url, identity.key_id, identity.private_key, pins(hub), **options)  # type: ignore[arg-type]


def test_the_kit_imports_nothing_of_the_hub() -> None:
    hub_packages = {"api", "neuron", "privacy", "warehouse", "schemas", "connectors", "relay", "simulator", "kernel"}
    for path in (KIT_SRC / "neuron_consumer").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not {n.split(".")[0] for n in names} & hub_packages, path.name


def test_pull_is_incremental_and_stores_exactly_the_latest_rows(fresh_hub: LiveHub, tmp_path: Path) -> None:
    with kit(fresh_hub) as hub:
        first = pull(hub, FEED, tmp_path)
        assert first.partitions == [f"{p.partition_key}@v{p.version}" for p in fresh_hub.latest("district")]
        assert pull(hub, FEED, tmp_path).partitions == []  # nothing new
        fresh_hub.publish("district", date(2026, 11, 21), 2, 3)
        assert pull(hub, FEED, tmp_path).partitions == [f"community_id={COMMUNITY}/day=2026-11-21@v2"]
    table = ds.dataset(tmp_path / FEED, partitioning="hive").to_table()
    expected = {p.partition_key: p.rows for p in fresh_hub.latest("district")}
    assert table.num_rows == sum(len(rows) for rows in expected.values())
    assert sorted(table.column("entries").to_pylist()) == sorted(r["entries"] for v in expected.values() for r in v)
    assert verify_folder(tmp_path, FEED, pins(fresh_hub)) == []
    # Only the newest version of a partition is kept as evidence.
    assert len(list((tmp_path / STATE_DIR / FEED).rglob("*.parquet"))) == len(expected)


def test_the_pulled_folder_is_one_dataset_for_pandas_pyarrow_duckdb_and_polars(
    fresh_hub: LiveHub, tmp_path: Path
) -> None:
    with kit(fresh_hub) as hub:
        pull(hub, FEED, tmp_path)
    folder = tmp_path / FEED
    rows = sum(len(p.rows) for p in fresh_hub.latest("district"))
    frame = pd.read_parquet(folder)
    assert len(frame) == rows and {"community_id", "day", "entries", "hour_start"} <= set(frame.columns)
    assert pq.read_table(folder).num_rows == rows
    table = ds.dataset(folder, partitioning="hive").to_table()
    assert table.num_rows == rows and pa.types.is_timestamp(table.schema.field("hour_start").type)
    assert sorted({str(d) for d in table.column("day").to_pylist()}) == ["2026-11-20", "2026-11-21", "2026-11-22"]
    sql = f"SELECT count(*), count(DISTINCT day), min(day) FROM read_parquet('{folder}/**/*.parquet')"
    duck = duckdb.connect().execute(sql)
    assert duck.fetchall() == [(rows, 3, date(2026, 11, 20))]
    polars = pl.read_parquet(folder)
    assert polars.height == rows and polars.schema["day"] == pl.Date and polars.schema["entries"] == pl.Int64


def test_only_a_pinned_key_is_trusted_never_the_first_one_seen(fresh_hub: LiveHub, tmp_path: Path) -> None:
    identity = fresh_hub.identities["district"]
    other = thumbprint({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})
    with (
        Hub(fresh_hub.url, identity.key_id, identity.private_key, {other}, ca=fresh_hub.ca) as hub,
        pytest.raises(IntegrityError),
    ):
        pull(hub, FEED, tmp_path)
    assert not (tmp_path / FEED).exists()


def test_a_tampered_partition_is_never_written(fresh_hub: LiveHub, tmp_path: Path) -> None:
    with TamperingProxy(fresh_hub.url) as proxy:
        proxy.tamper = flip_last_body_byte
        with kit(fresh_hub, url=proxy.url) as hub, pytest.raises(IntegrityError):
            pull(hub, FEED, tmp_path)
    assert not (tmp_path / FEED).exists()


def test_verify_finds_a_changed_file_and_one_no_manifest_accounts_for(fresh_hub: LiveHub, tmp_path: Path) -> None:
    with kit(fresh_hub) as hub:
        pull(hub, FEED, tmp_path)
    data_file = next((tmp_path / FEED).rglob("*.parquet"))
    table = pq.read_table(data_file)
    entries = table.column_names.index("entries")
    pq.write_table(table.set_column(entries, "entries", pc.add(table.column(entries), 1)), data_file)
    stray = tmp_path / FEED / f"community_id={COMMUNITY}" / "day=2030-01-01" / "part-0.parquet"
    stray.parent.mkdir(parents=True)
    pq.write_table(table, stray)
    problems = verify_folder(tmp_path, FEED, pins(fresh_hub))
    assert len(problems) == 2 and "does not hold the rows" in problems[0] and "no signed manifest" in problems[1]
    assert main(["verify", FEED, "--out", str(tmp_path), *[a for p in pins(fresh_hub) for a in ("--pin", p)]]) == 3


def test_public_security_opens_its_sealed_field_and_nobody_else_can(fresh_hub: LiveHub, tmp_path: Path) -> None:
    police_key = X25519PrivateKey.generate()
    recipient = Recipient("public_security", "public_security-x25519", police_key.public_key())
    rows = flow_rows(date(2026, 11, 23), 1, 4)
    table = pa.Table.from_pylist([{k: r[k] for k in FLOW_FIELDS} for r in rows])
    sealed = [seal(g, recipient, b"\x05" * 32, "gate_code", feed=FEED) for g in table.column("gate_code").to_pylist()]
    table = table.set_column(2, "gate_code", pa.array(sealed))
    publish_table(
        fresh_hub.settings,
        fresh_hub.signing_key,
        "public_security",
        FEED,
        f"community_id={COMMUNITY}/day=2026-11-23",
        1,
        table,
    )
    with kit(fresh_hub, "public_security") as hub:
        pull(hub, FEED, tmp_path)
    pem = tmp_path / "police.pem"
    pem.write_bytes(
        police_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    opened = tmp_path / "opened"
    assert main(["unseal", "--key", str(pem), "--feed", FEED, "--out", str(tmp_path), "--to", str(opened)]) == 0
    frame = pd.read_parquet(opened / "community_id=music-square" / "day=2026-11-23")
    assert frame["gate_code"].tolist() == [r["gate_code"] for r in rows]
    assert unseal(sealed[0], police_key, "public_security", FEED, "gate_code") == rows[0]["gate_code"]
    for consumer, feed, field in [("district", FEED, "gate_code"), ("public_security", "x", "gate_code")]:
        with pytest.raises(IntegrityError):
            unseal(sealed[0], police_key, consumer, feed, field)
    with pytest.raises(IntegrityError):
        unseal(sealed[0], X25519PrivateKey.generate(), "public_security", FEED, "gate_code")


def test_verify_ballot_agrees_with_the_hubs_merkle_module(tmp_path: Path) -> None:
    receipts = [new_receipt() for _ in range(7)]
    leaves = [ballot_leaf("ms", "m-1", receipt_commitment(r), "agree", 80.5 + i) for i, r in enumerate(receipts)]
    root = merkle_root(leaves)
    for i, receipt in enumerate(receipts):
        proof = {
            **inclusion_proof(leaves, leaves[i]).as_dict(),
            "community_id": "ms",
            "motion_id": "m-1",
            "merkle_root": root,
        }
        assert kit_verify_ballot(proof, receipt, "agree", 80.5 + i, root)
        assert not kit_verify_ballot(proof, receipt, "oppose", 80.5 + i, root)
        assert not kit_verify_ballot(proof, receipt, "agree", 80.5 + i, "0" * 64)
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof))
    assert main(["verify-ballot", str(path), "--receipt", receipts[-1], "--choice", "agree", "--area", "86.5"]) == 0
    assert main(["verify-ballot", str(path), "--receipt", receipts[0], "--choice", "agree", "--area", "86.5"]) == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["pull", FEED, "--hub", "127.0.0.1:1", "--key-id", "k", "--private-key", "missing.pem", "--pin", "x"],
            "key file",
        ),
        (["verify", FEED, "--out", "nowhere", "--pin", "x"], "holds no pull"),
        (["unseal", "--key", "missing.pem", "--feed", FEED], "key file"),
        (["thumbprint", "missing.json"], "not a JWKS"),
    ],
)
def test_user_errors_are_one_line_without_a_traceback(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def kit_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the kit installed from clients/python, as a consumer would
    (`pip install`; the versions pinned in constraints.txt, from pip's configured index)."""
    root = KIT_SRC.parents[2]
    venv = tmp_path_factory.mktemp("kit") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    # From a copy: building in place would leave build/ and *.egg-info in the repository.
    source = shutil.copytree(root / "clients" / "python", venv.parent / "source")
    subprocess.run([*pip, "-c", str(root / "constraints.txt"), str(source)], check=True)
    return venv


@pytest.mark.slow
def test_the_installed_kit_pulls_and_verifies_from_a_real_hub(
    kit_venv: Path, fresh_hub: LiveHub, tmp_path: Path
) -> None:
    installed = subprocess.run(
        [str(kit_venv / "bin" / "python"), "-m", "pip", "list", "--format=json"], capture_output=True, check=True
    )
    names = {p["name"].lower() for p in json.loads(installed.stdout)}
    assert "neuron-consumer" in names and not names & {"neuron-hub", "apache-airflow", "duckdb", "great-expectations"}
    identity = fresh_hub.identities["district"]
    key = tmp_path / "district.pem"
    key.write_bytes(
        identity.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(fresh_hub.jwks))
    tool = str(kit_venv / "bin" / "neuron-consumer")
    printed = subprocess.run([tool, "thumbprint", str(jwks)], capture_output=True, text=True, check=True).stdout
    pin_args = [a for line in printed.splitlines() for a in ("--pin", line.split("\t")[1])]
    out = tmp_path / "pulled"
    pull_args = ["pull", FEED, "--hub", fresh_hub.url, "--key-id", identity.key_id, "--private-key", str(key)]
    pull_args += ["--ca", str(fresh_hub.ca)]
    done = subprocess.run([tool, *pull_args, *pin_args, "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "17 rows verified" in done.stdout
    verified = subprocess.run([tool, "verify", FEED, "--out", str(out), *pin_args], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    assert pd.read_parquet(out / FEED)["entries"].sum() == sum(
        r["entries"] for p in fresh_hub.latest("district") for r in p.rows
    )
    unpinned = subprocess.run(
        [tool, *pull_args, "--pin", "x", "--out", str(tmp_path / "x")], capture_output=True, text=True
    )
    assert unpinned.returncode == 3 and "pinned" in unpinned.stderr and "Traceback" not in unpinned.stderr


def _seal_v1(value: str, recipient: X25519PrivateKey, key_id: str, field: str) -> str:
    """A value sealed the way the hub sealed before HPKE (privacy/seal.py up to this change)."""
    import hmac

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from privacy.keys import b64u

    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    seed = hmac.digest(b"h" * 32, f"{key_id}\x1f{field}\x1f{value}".encode(), "sha256")
    ephemeral = X25519PrivateKey.from_private_bytes(seed)
    eph, mine = ephemeral.public_key().public_bytes(*raw), recipient.public_key().public_bytes(*raw)
    info = b"neuron-hub/seal/v1\x1f" + field.encode()
    key = HKDF(hashes.SHA256(), 32, eph + mine, info).derive(ephemeral.exchange(recipient.public_key()))
    sealed = AESGCM(key).encrypt(b"\x00" * 12, value.encode(), f"nhs1\x1f{key_id}\x1f{field}".encode())
    return f"nhs1.{key_id}.{b64u(eph + sealed)}"


def test_values_sealed_before_hpke_still_open_in_the_kit() -> None:
    police = X25519PrivateKey.generate()
    token = _seal_v1("沪A12345", police, "public_security-x25519", "plate_no")
    assert unseal(token, police, "public_security", "traffic.vehicle_passes", "plate_no") == "沪A12345"
    with pytest.raises(IntegrityError):
        unseal(token, police, "public_security", "traffic.vehicle_passes", "gate_code")
    with pytest.raises(IntegrityError):
        unseal(token, X25519PrivateKey.generate(), "public_security", "traffic.vehicle_passes", "plate_no")


def test_the_catalog_describes_each_field_as_the_files_hold_it(fresh_hub: LiveHub, tmp_path: Path) -> None:
    with kit(fresh_hub, "public_security") as hub:
        detail = hub.feed(FEED)
        pull(hub, FEED, tmp_path)
    manifest = verify_jws(next((tmp_path / STATE_DIR / FEED).rglob("*.jws")).read_text(), kit(fresh_hub).keys)
    assert [(f["name"], f["parquet_type"]) for f in detail["fields"]] == [
        (c["name"], c["type"]) for c in manifest["schema"]
    ]
    for field in detail["fields"]:
        assert field["meaning"]["zh"] and field["meaning"]["en"] and field["treatment_text"]["en"] == "as recorded"
        assert field["legal_basis"] == detail["legal_basis"]


def test_a_refusal_and_an_unreachable_hub_are_one_line_and_their_own_exit_code(
    fresh_hub: LiveHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    identity = fresh_hub.identities["district"]
    key = tmp_path / "district.pem"
    key.write_bytes(
        identity.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    common = ["--key-id", identity.key_id, "--private-key", str(key), "--out", str(tmp_path / "out")]
    common += ["--ca", str(fresh_hub.ca)]
    pin_args = [a for p in pins(fresh_hub) for a in ("--pin", p)]
    assert main(["pull", "no.such_feed", "--hub", fresh_hub.url, *common, *pin_args]) == 4
    assert "refused the request (404)" in capsys.readouterr().err
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    argv = ["pull", FEED, "--hub", f"http://127.0.0.1:{port}", *common, *pin_args]
    with monkeypatch_sleep():
        assert main(argv) == 5
    err = capsys.readouterr().err
    assert "unreachable" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
