"""`neuron-consumer verify`: a pulled folder checked against its signed manifests, offline.

For every partition the state lists: the hub's file is there, its manifest verifies with a
pinned hub key and names this feed, consumer, partition and version, its SHA-256, size,
rows and columns match, and the dataset file holds exactly the same rows. Files in the
dataset that no manifest accounts for are reported too.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from neuron_consumer import dataset
from neuron_consumer.client import check_manifest
from neuron_consumer.errors import ConsumerError, IntegrityError
from neuron_consumer.keys import pinned_keys, verify_jws


def verify_folder(out: Path, feed: str, pins: set[str]) -> list[str]:
    """The problems found (empty: everything verifies)."""
    dataset.check_feed_name(feed)
    state_file = dataset.state_path(out, feed)
    if not state_file.exists():
        raise ConsumerError(f"{out} holds no pull of {feed} (no {state_file.relative_to(out)})")
    state = dataset.load_state(out, feed)
    try:
        keys = pinned_keys(json.loads((out / dataset.STATE_DIR / "jwks.json").read_text()), pins)
    except (OSError, ValueError) as exc:
        raise ConsumerError(f"{out} has no readable copy of the hub's JWKS; pull again") from exc
    problems: list[str] = []
    expected_files = set()
    for key, version in sorted(state["versions"].items()):
        original = dataset.original_path(out, feed, key, version)
        data_file = dataset.dataset_path(out, feed, key)
        expected_files.add(data_file.resolve())
        try:
            manifest = verify_jws(original.with_suffix(".jws").read_text(), keys)
            data = original.read_bytes()
            parquet = pq.ParquetFile(original)
            check_manifest(
                manifest, feed, state["consumer"], key, version, hashlib.sha256(data).hexdigest(), len(data), parquet
            )
            stored = pq.read_table(data_file)
            if not stored.equals(dataset.dataset_table(original, key, dict(state))):
                raise IntegrityError(f"{data_file.relative_to(out)} does not hold the rows of its signed partition")
        except OSError as exc:
            problems.append(f"{key} v{version}: {exc.strerror}: {exc.filename}")
        except (IntegrityError, ConsumerError, pa.ArrowException) as exc:
            problems.append(f"{key} v{version}: {exc}")
    root = out / feed
    for path in sorted(root.rglob("*.parquet")) if root.exists() else []:
        if path.resolve() not in expected_files and not any(p.startswith(".") for p in path.relative_to(root).parts):
            problems.append(f"{path.relative_to(out)}: no signed manifest accounts for this file")
    return problems
