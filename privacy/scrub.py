"""Scrubbing free text: every identifier the recognisers find, and every name of a known
resident, replaced by a typed placeholder ("联系[NAME]，电话[MOBILE]").

Names come from the platform's roster (a set of names, passed in). They are matched with
an Aho–Corasick automaton (pyahocorasick): one pass over the text whatever the roster's
size. A regex alternation tries each name at each position: at one community's 1,400 names
it is a third slower, at a subdistrict's 17,000 about 18× slower (bench/RESULTS.md).
Where findings overlap, the leftmost wins, then the longest, then the kind with a check
(an ID number beats the phone-like digits inside it); a finding that runs past the one
chosen widens it, so no tail is left in the clear.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

import ahocorasick
import pyarrow as pa

from privacy.names import NAME, find_names
from privacy.normalise import normalise
from privacy.operators import map_unique
from privacy.recognisers import PRIORITY, RECOGNISERS, ROOM_SHAPED, Finding

MIN_NAME_LENGTH = 2  # a one-character "name" would scrub ordinary words


def placeholder(kind: str) -> str:
    """The typed placeholder that replaces an identifier of `kind`."""
    return f"[{kind}]"


class NameMatcher:
    """Finds known residents' names in text, all of them in one pass."""

    def __init__(self, names: Iterable[str]):
        self._automaton = ahocorasick.Automaton()
        for name in {n.strip() for n in names}:
            if len(name) >= MIN_NAME_LENGTH:
                self._automaton.add_word(name, len(name))
        self.empty = len(self._automaton) == 0
        if not self.empty:
            self._automaton.make_automaton()

    def find(self, text: str) -> list[Finding]:
        """Every occurrence of a known name (overlaps resolved later)."""
        if self.empty:
            return []
        return [Finding(end - length + 1, end + 1, NAME) for end, length in self._automaton.iter(text)]


@lru_cache(maxsize=4)
def _matcher(roster: frozenset[str]) -> NameMatcher:
    return NameMatcher(roster)


def find_identifiers(
    text: str, names: NameMatcher | None = None, *, unlisted_names: bool = True, segmenter: bool = True
) -> list[Finding]:
    """The identifiers in `text`, non-overlapping, in order. Offsets are the original text's
    (normalisation keeps every character's place). `names` is the roster; `unlisted_names`
    adds the names found without one (privacy/names.py), `segmenter` jieba's among them."""
    folded = normalise(text)
    found = [f for r in RECOGNISERS for f in r.find(folded)]
    found += other_rooms(folded, found)
    if names is not None:
        found += names.find(folded)
    if unlisted_names:
        found += find_names(folded, segmenter)
    rank = {**PRIORITY, NAME: len(PRIORITY)}
    found.sort(key=lambda f: (f.start, -(f.end - f.start), rank[f.kind]))
    chosen: list[Finding] = []
    for finding in found:
        if not chosen or finding.start >= chosen[-1].end:
            chosen.append(finding)
        elif finding.end > chosen[-1].end:
            # Overlapping findings: hide their union rather than leave a tail in the clear.
            chosen[-1] = Finding(chosen[-1].start, finding.end, chosen[-1].kind)
    return chosen


_BARE_ROOM = re.compile(
    rf"(?<![\d.:/\-A-Za-z零〇一二两三四五六七八九十第]){ROOM_SHAPED}"
    r"(?![年月日号元块角折期届条页路弄分秒点时楼层栋幢单户人位个只件台次岁斤米克升度%℃:.\-/\d])"
)
_ROOM_DIGITS = re.compile(r"\d{3,4}(?=\D*$)")


def other_rooms(text: str, found: list[Finding]) -> list[Finding]:
    """Bare numbers shaped like the text's rooms: where a text names a room ("我家是1801"),
    another number of the same shape is another flat ("他要送的是1701", "1801和1802")."""
    lengths = {
        len(m.group())
        for f in found
        if f.kind == "ROOM" and (m := _ROOM_DIGITS.search(text[f.start : f.end].rstrip("室 ")))
    }
    if not lengths:
        return []
    taken = [(f.start, f.end) for f in found]
    return [
        Finding(m.start(), m.end(), "ROOM")
        for m in _BARE_ROOM.finditer(text)
        if len(m.group()) in lengths and not any(s < m.end() and m.start() < e for s, e in taken)
    ]


def scrub_text(text: str, names: NameMatcher | None = None) -> str:
    """`text` with each identifier replaced by its typed placeholder."""
    out, last = [], 0
    for finding in find_identifiers(text, names):
        out += [text[last : finding.start], placeholder(finding.kind)]
        last = finding.end
    out.append(text[last:])
    return "".join(out)


def scrub_column(column: pa.Array | pa.ChunkedArray, roster: Iterable[str] = ()) -> pa.Array:
    """A string column scrubbed value by value (each distinct text once); nulls stay null."""
    names = _matcher(frozenset(roster))
    return map_unique(column.cast(pa.string()), lambda text: scrub_text(text, names), pa.string())
