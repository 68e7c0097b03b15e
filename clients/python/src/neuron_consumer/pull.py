"""`neuron-consumer pull`: an incremental, resumable, verified copy of one feed (dataset.py has the layout).

It follows the feed's change log (`changes?since=`) and downloads each new partition
version by id. Each file is written atomically and only then the cursor, so a pull
interrupted anywhere resumes after the last stored partition. Nothing that fails
verification is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from neuron_consumer import dataset
from neuron_consumer.client import Hub


@dataclass
class PullResult:
    feed: str
    partitions: list[str] = field(default_factory=list)  # "<partition key>@v<version>"
    rows: int = 0
    cursor: str | None = None


def pull(hub: Hub, feed: str, out: Path, progress: Callable[[str, int], None] | None = None) -> PullResult:
    """Fetch every partition version published after the stored cursor."""
    dataset.check_feed_name(feed)
    out = Path(out)
    state = dataset.load_state(out, feed)
    state["consumer"] = hub.consumer
    result = PullResult(feed, cursor=state["cursor"])
    keys_saved = False
    while True:
        changes, _ = hub.changes(feed, state["cursor"])
        if not changes:
            break
        if not keys_saved:  # the JWKS that verified what is stored, for `verify` later (pins still apply)
            dataset.write_atomic(out / dataset.STATE_DIR / "jwks.json", json.dumps(hub.jwks, indent=1).encode())
            keys_saved = True
        for change in changes:
            key, version = str(change["partition"]), int(change["version"])
            if version >= state["versions"].get(key, 0):  # an older version arriving late never replaces a newer
                original = dataset.original_path(out, feed, key, version)
                part = hub.download(feed, str(change["id"]), original, expected=(key, version))
                dataset.write_atomic(original.with_suffix(".jws"), part.manifest_jws.encode())
                dataset.write_dataset_file(out, feed, key, original, state)
                previous = state["versions"].get(key)
                if previous is not None and previous != version:  # superseded: only the newest is evidence
                    old = dataset.original_path(out, feed, key, previous)
                    old.unlink(missing_ok=True)
                    old.with_suffix(".jws").unlink(missing_ok=True)
                state["versions"][key] = version
                result.partitions.append(f"{key}@v{version}")
                result.rows += part.rows
                if progress is not None:
                    progress(f"{key}@v{version}", part.rows)
            state["cursor"] = str(change["cursor"])
            dataset.save_state(out, state)
    result.cursor = state["cursor"]
    return result
