"""`neuron district gather`: pull every granted feed of every hub, verify everything, commit
to the Iceberg tables exactly once, and advance the cursors only after the commit.

Hubs are pulled in parallel (`workers`, network-bound; each response's verification is the
CPU part), a chunk of hubs at a time; each chunk ends with one commit per feed (more when
`commit_max_partitions`/`commit_max_bytes` split it) and only then saves the cursors. So:
- killed anywhere, a run resumes from the last saved cursors, and whatever it committed
  after them is found in the tables' ledgers and left out (district.lake): exactly once;
- a partition that fails any check is refused, reported (report and `refusals.jsonl`) and
  never committed; its feed's cursor at that hub stays before it, so the next run asks for
  it again (a tampering proxy may be gone) and nothing after it is skipped unseen;
- a hub that is down or too slow is reported unavailable; what it served before failing is
  committed, the rest waits for the next run; other hubs are not held up beyond the chunk.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.client import HubClient, HubRefused
from district.config import DistrictSettings, HubEntry
from district.keys import key_id, load_key
from district.lake import Held, Lake, Verified, table_name
from district.verify import check_fingerprint, check_rows, pinned_jwks
from kernel.errors import IntegrityError, NeuronError, RetriableError

log = logging.getLogger(__name__)
Ledgers = dict[str, dict[tuple[str, str], Held]]  # table name → (hub, partition) → held


@dataclass(frozen=True)
class Refusal:
    """A partition version (or a whole hub's answer) the district would not take, and why."""

    hub: str
    feed: str
    partition: str
    reason: str


@dataclass
class HubPull:
    """What one hub served in one run, verified, and where its cursors stand."""

    hub: str
    verified: list[Verified] = field(default_factory=list)
    cursors: dict[str, str] = field(default_factory=dict)
    refusals: list[Refusal] = field(default_factory=list)
    unavailable: str | None = None
    already_held: int = 0


@dataclass
class GatherReport:
    """What a run did, for the operator (and `--json`)."""

    run: str
    hubs: int = 0
    committed: int = 0
    replaced: int = 0
    already_held: int = 0
    rows: int = 0
    commits: int = 0
    refusals: list[Refusal] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    failed_commits: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class CursorStore:
    """Per hub and feed, the change-log cursor after the last committed (or already held) change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cursors: dict[str, dict[str, str]] = json.loads(path.read_text()) if path.exists() else {}

    def get(self, hub: str, feed: str) -> str | None:
        return self.cursors.get(hub, {}).get(feed)

    def set(self, hub: str, feed: str, cursor: str) -> None:
        self.cursors.setdefault(hub, {})[feed] = cursor

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w") as f:
            json.dump(self.cursors, f, sort_keys=True, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def hub_client(settings: DistrictSettings, hub: HubEntry, default_key: Ed25519PrivateKey) -> HubClient:
    """A verifying client of one hub, signing with the district's key for it."""
    private = load_key(settings.resolve(hub.key_file)) if hub.key_file else default_key
    return HubClient(
        hub.url,
        key_id(hub.consumer, private),
        private,
        pinned_jwks(hub, settings.home_path),
        timeout=hub.timeout_seconds,
        retries=hub.retries,
        backoff=0.5,
        consumer=hub.consumer,
        jwks_fingerprint=hub.jwks_fingerprint,
    )


def pull_hub(
    settings: DistrictSettings,
    hub: HubEntry,
    key: Ed25519PrivateKey,
    ledgers: Ledgers,
    cursors: CursorStore,
    scratch: Path,
) -> HubPull:
    """Everything new at one hub, verified; never raises for the hub's own failures."""
    pull = HubPull(hub.community_id)
    try:
        with hub_client(settings, hub, key) as client:
            check_fingerprint(hub, client.jwks)
            feeds = [f["name"] for f in client.catalog()]
            for feed in feeds:
                if hub.feeds is None or feed in hub.feeds:
                    _pull_feed(client, hub, feed, ledgers.get(table_name(feed), {}), cursors, scratch, pull)
    except RetriableError as exc:
        pull.unavailable = str(exc)
    except HubRefused as exc:
        pull.unavailable = f"the hub refused the district ({exc.status_code})"
    except IntegrityError as exc:
        pull.refusals.append(Refusal(hub.community_id, "*", "*", str(exc)))
        pull.unavailable = "its answers do not verify"
    return pull


def _pull_feed(
    client: HubClient,
    hub: HubEntry,
    feed: str,
    held: dict[tuple[str, str], Held],
    cursors: CursorStore,
    scratch: Path,
    pull: HubPull,
) -> None:
    cursor = cursors.get(hub.community_id, feed)
    while True:
        changes, _ = client.changes(feed, cursor)
        if not changes:
            return
        for change in changes:
            key, version, sha = str(change["partition"]), int(change["version"]), str(change["sha256"])
            before = held.get((hub.community_id, key))
            if before is not None and before.version >= version:
                if before.version == version and before.sha256 != sha:
                    pull.refusals.append(Refusal(hub.community_id, feed, f"{key}@v{version}", "other bytes than held"))
                    return
                pull.already_held += 1
            else:
                try:
                    pull.verified.append(_download(client, hub, feed, change, scratch))
                except (IntegrityError, HubRefused) as exc:
                    # Refused: the cursor stays before it, so the next run asks again.
                    pull.refusals.append(Refusal(hub.community_id, feed, f"{key}@v{version}", str(exc)))
                    log.warning("refused %s %s v%d from hub %s: %s", feed, key, version, hub.community_id, exc)
                    return
            cursor = str(change["cursor"])
            pull.cursors[feed] = cursor


def _download(client: HubClient, hub: HubEntry, feed: str, change: dict[str, Any], scratch: Path) -> Verified:
    key, version = str(change["partition"]), int(change["version"])
    dest = scratch / f"{uuid.uuid4().hex}.parquet"
    try:
        download = client.download_partition(feed, str(change["id"]), dest, expected=(key, version))
        if download.manifest.get("sha256") != change["sha256"]:
            raise IntegrityError(f"{feed} partition {key} v{version}: the change log and the manifest differ")
        rows = pq.read_table(dest)
    finally:
        dest.unlink(missing_ok=True)
    check_rows(rows, hub, feed, key)
    return Verified(hub.community_id, feed, key, version, str(download.manifest["sha256"]), rows)


def _chunks(items: list[HubEntry], size: int) -> Iterator[list[HubEntry]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _batches(items: list[Verified], settings: DistrictSettings) -> Iterator[list[Verified]]:
    batch: list[Verified] = []
    size = 0
    for item in items:
        if batch and (
            len(batch) >= settings.commit_max_partitions or size + item.rows.nbytes > settings.commit_max_bytes
        ):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item.rows.nbytes
    if batch:
        yield batch


def gather(
    settings: DistrictSettings,
    *,
    hubs: list[str] | None = None,
    lake: Lake | None = None,
    progress: Callable[[str], None] | None = None,
) -> GatherReport:
    """One run over the hubs (all, or those named): pull, verify, commit, then move the cursors."""
    key = load_key(settings.resolve(settings.key_file))
    lake = lake or Lake(settings)
    chosen = [settings.hub(name) for name in hubs] if hubs else list(settings.hubs)
    report = GatherReport(run=datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6], hubs=len(chosen))
    cursors = CursorStore(settings.home_path / "state" / "cursors.json")
    ledgers: Ledgers = lake.ledgers()
    scratch = settings.home_path / "tmp" / report.run
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        with ThreadPoolExecutor(settings.workers) as pool:
            for chunk in _chunks(chosen, settings.commit_hubs):
                pulls = list(pool.map(lambda h: pull_hub(settings, h, key, ledgers, cursors, scratch), chunk))
                _commit_chunk(settings, lake, pulls, ledgers, cursors, report)
                if progress is not None:
                    progress(f"{report.committed} partition version(s) committed, {len(report.refusals)} refused")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _record_refusals(settings, report)
    return report


def _commit_chunk(
    settings: DistrictSettings,
    lake: Lake,
    pulls: list[HubPull],
    ledgers: Ledgers,
    cursors: CursorStore,
    report: GatherReport,
) -> None:
    by_feed: dict[str, list[Verified]] = {}
    for pull in pulls:
        report.already_held += pull.already_held
        report.refusals += pull.refusals
        if pull.unavailable:
            report.unavailable[pull.hub] = pull.unavailable
        for item in pull.verified:
            by_feed.setdefault(item.feed, []).append(item)
    failed: set[str] = set()
    for feed, items in sorted(by_feed.items()):
        try:
            for batch in _batches(items, settings):
                result = lake.commit(feed, batch, report.run)
                report.commits += 1 if result.committed else 0
                report.committed += len(result.committed)
                report.replaced += result.replaced
                report.already_held += result.already_held
                report.rows += sum(item.rows.num_rows for item in result.committed)
                held = ledgers.setdefault(table_name(feed), {})
                for item in result.committed:
                    held[(item.hub, item.partition_key)] = Held(item.version, item.sha256)
        except NeuronError as exc:
            failed.add(feed)
            report.failed_commits[feed] = str(exc)
            log.error("commit of %s failed: %s", feed, exc)
    for pull in pulls:
        for feed, cursor in pull.cursors.items():
            if feed not in failed:
                cursors.set(pull.hub, feed, cursor)
    cursors.save()


def _record_refusals(settings: DistrictSettings, report: GatherReport) -> None:
    if not report.refusals:
        return
    path = settings.home_path / "refusals.jsonl"
    now = datetime.now(UTC).isoformat()
    with open(path, "a", encoding="utf-8") as f:
        for refusal in report.refusals:
            f.write(json.dumps({"at": now, "run": report.run, **asdict(refusal)}, ensure_ascii=False) + "\n")
