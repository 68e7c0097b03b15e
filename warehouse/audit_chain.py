"""Reading a hash chain of audit entries back and saying exactly what was done to it.

An entry's hash is sha256(prev_hash ‖ canonical JSON of its fields, its seq included)
(api.audit.entry_hash). Following the `prev_hash` links from the start rebuilds the order
the entries were written in, whatever seq they are stored under now; so each entry can be
judged on its own: intact, edited (its content no longer gives its hash), moved (stored
under another seq than the one it was written with), and each gap between linked runs of
entries is either deleted entries (the run after it was written with later seqs) or an
entry edited and re-hashed (the next one no longer links to it).

The common case, an intact chain, is checked in one streaming pass; only a broken chain is
loaded whole for the diagnosis.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from privacy.jws import canonical_json

GENESIS_HASH = "0" * 64
MAX_GAP = 100_000  # how far past a gap the seq of the next linked run is searched for


def chain_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """The hash an entry with these fields (seq included) has after `prev_hash`."""
    return hashlib.sha256(prev_hash.encode() + canonical_json(fields)).hexdigest()


@dataclass(frozen=True)
class Link:
    """One stored entry: its hashed fields (with the seq it is stored under), and its links."""

    fields: dict[str, Any]
    prev_hash: str
    entry_hash: str

    @property
    def seq(self) -> int:
        return int(self.fields["seq"])

    def hashes_at(self, seq: int) -> bool:
        """Whether the entry's content, written as entry `seq`, gives its stored hash."""
        return chain_hash(self.prev_hash, {**self.fields, "seq": seq}) == self.entry_hash


@dataclass
class AuditReport:
    """What a verification found; `ok` when nothing."""

    entries: int = 0
    last_seq: int = 0
    edited: list[int] = field(default_factory=list)  # seqs whose content changed
    deleted: list[int] = field(default_factory=list)  # seqs no longer there
    moved: list[tuple[int, int]] = field(default_factory=list)  # (stored as, written as): reordered
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def reordered(self) -> list[tuple[int, int]]:
        return self.moved


def quick_check(
    links: Iterable[Link], start_hash: str = GENESIS_HASH, start_seq: int = 1
) -> tuple[bool, int, str, int]:
    """One pass in stored order: (intact, entries, last hash, last seq)."""
    expected_prev, expected_seq, count = start_hash, start_seq, 0
    for link in links:
        count += 1
        if link.seq != expected_seq or link.prev_hash != expected_prev or not link.hashes_at(link.seq):
            return False, count, expected_prev, expected_seq - 1
        expected_prev, expected_seq = link.entry_hash, expected_seq + 1
    return True, count, expected_prev, expected_seq - 1


def _runs(links: list[Link], start_hash: str) -> list[list[Link]]:
    """The entries as runs that link one to the next, the first run starting at `start_hash`."""
    by_prev: dict[str, list[Link]] = {}
    for stored in links:
        by_prev.setdefault(stored.prev_hash, []).append(stored)
    hashes = {stored.entry_hash for stored in links}
    placed: set[int] = set()
    runs: list[list[Link]] = []
    head_hash: str | None = start_hash
    while len(placed) < len(links):
        if head_hash is not None and by_prev.get(head_hash):
            run_start = by_prev[head_hash][0]
        else:  # the next run: an entry whose predecessor is not there, lowest seq first
            orphans = [x for x in links if id(x) not in placed and x.prev_hash not in hashes] or [
                x for x in links if id(x) not in placed
            ]
            run_start = min(orphans, key=lambda x: x.seq)
        run: list[Link] = []
        link: Link | None = run_start
        while link is not None and id(link) not in placed:
            run.append(link)
            placed.add(id(link))
            followers = [x for x in by_prev.get(link.entry_hash, []) if id(x) not in placed]
            link = followers[0] if followers else None
        runs.append(run)
        head_hash = None
    return runs


def _written_as(link: Link, after: int) -> int | None:
    """The seq an entry was written with: the first from `after + 1` at which it hashes."""
    if link.seq > after and link.hashes_at(link.seq):
        return link.seq
    return next((seq for seq in range(after + 1, after + 1 + MAX_GAP) if link.hashes_at(seq)), None)


def diagnose(links: list[Link], start_hash: str = GENESIS_HASH, start_seq: int = 1) -> AuditReport:
    """What happened to a chain that did not pass `quick_check`."""
    report = AuditReport(entries=len(links))
    last = start_seq - 1  # the seq the previous run was written up to
    for index, run in enumerate(_runs(links, start_hash)):
        first = _written_as(run[0], last) if index or run[0].prev_hash != start_hash else start_seq
        if first is None:
            report.edited.append(run[0].seq)
            report.problems.append(f"entry {run[0].seq} was edited and does not link to any entry")
            first = run[0].seq
        elif first > last + 1:
            report.deleted += range(last + 1, first)
            report.problems.append(f"entries {last + 1}..{first - 1} were deleted")
        elif index:
            report.edited.append(last)
            report.problems.append(f"entry {last} was edited and re-hashed: entry {last + 1} no longer links to it")
        for offset, link in enumerate(run):
            written = first + offset
            if not link.hashes_at(written):
                report.edited.append(written)
                report.problems.append(f"entry {written} was edited: its content no longer gives its hash")
            if link.seq != written:
                report.moved.append((link.seq, written))
                report.problems.append(f"the entry stored as {link.seq} was written as {written} (reordered)")
        last = first + len(run) - 1
    report.last_seq = last
    return report


def check_end(report: AuditReport, last_hash: str, head_seq: int, head_hash: str) -> None:
    """Compare where the chain ends with where its head (or an archive's manifest) says it ends."""
    if head_seq > report.last_seq:
        report.deleted += range(report.last_seq + 1, head_seq + 1)
        report.problems.append(f"entries {report.last_seq + 1}..{head_seq} were deleted from the end")
    elif (head_seq, head_hash) != (report.last_seq, last_hash):
        report.problems.append(f"the chain ends at entry {report.last_seq} but its head names entry {head_seq}")
