"""What the DAG tests share: a private Airflow home, a hub's environment, and the published
partitions of a hub as plain tuples (to compare runs)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from sqlalchemy import select

from kernel.settings import Settings
from neuron.airflow_runner import DAGS_FOLDER
from tests.conftest import TOKEN
from warehouse.control import session_scope
from warehouse.models import Partition

# Fixed, test-only: two hubs with the same master secret give the same pseudonyms, so
# their published bytes can be compared.
MASTER_SECRET = base64.b64encode(bytes(range(32))).decode()


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of an Airflow process with its own metadata DB under `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "NEURON_"))}
    return {
        **env,
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        **extra,
    }


def hub_env(home: Path, vendor_url: str | None, **extra: str) -> dict[str, str]:
    """The NEURON_* variables of a private hub under `home` reading the simulated vendor
    (None: each community's hub.toml names its own, and no variable may override it)."""
    vendor = {"NEURON_PARKING__BASE_URL": vendor_url, "NEURON_PARKING__TOKEN": TOKEN} if vendor_url else {}
    return {
        "NEURON_HOME": str(home),
        **vendor,
        "NEURON_STATE_DIR": "var",
        "NEURON_LAKE_DIR": "lake",
        "NEURON_WAREHOUSE_PATH": "var/warehouse.duckdb",
        "NEURON_MASTER_SECRET": MASTER_SECRET,
        **extra,
    }


def published(settings: Settings) -> list[tuple[str, str, str, int, str, int]]:
    """Every published partition version: (consumer, feed, key, version, sha256, rows)."""
    with session_scope(settings.control_url) as s:
        rows = s.execute(
            select(
                Partition.consumer,
                Partition.feed,
                Partition.partition_key,
                Partition.version,
                Partition.sha256,
                Partition.rows,
            ).order_by(Partition.consumer, Partition.feed, Partition.partition_key, Partition.version)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def consumer_keys() -> tuple[bytes, bytes]:
    """A consumer's Ed25519 (requests) and X25519 (sealed fields) public keys, as PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    pem = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    return (
        Ed25519PrivateKey.generate().public_key().public_bytes(*pem),
        X25519PrivateKey.generate().public_key().public_bytes(*pem),
    )


def register_public_security(settings: Settings, keys: tuple[bytes, bytes]) -> None:
    """Public security with its encryption key, so plates are sealed to it and
    `traffic.vehicle_passes` is published (sealing is deterministic: same key, same bytes)."""
    from api.consumers import register_consumer
    from warehouse.recipients import register_encryption_key

    register_consumer(settings, "public_security", keys[0])
    register_encryption_key(settings, "public_security", keys[1])
