"""Recall and precision of the PII recognisers on labelled text (simulator/free_text.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from privacy.scrub import NameMatcher, find_identifiers


class _Label(Protocol):
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def kind(self) -> str: ...


class _Text(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def labels(self) -> Iterable[_Label]: ...


@dataclass
class Measurement:
    """Per kind: labels found (a finding of the same kind covers them), labels missed, false findings."""

    found: Counter[str] = field(default_factory=Counter)
    missed: Counter[str] = field(default_factory=Counter)
    false: Counter[str] = field(default_factory=Counter)

    def recall(self, kind: str) -> float:
        total = self.found[kind] + self.missed[kind]
        return self.found[kind] / total if total else 1.0

    def precision(self, kind: str) -> float:
        true = self.found[kind]
        return true / (true + self.false[kind]) if true + self.false[kind] else 1.0

    def kinds(self) -> list[str]:
        return sorted(set(self.found) | set(self.missed) | set(self.false))


def measure(texts: Iterable[_Text], names: NameMatcher) -> Measurement:
    """Run the recognisers over every text and score them against its labels."""
    result = Measurement()
    for item in texts:
        findings = find_identifiers(item.text, names)
        labels = list(item.labels)
        for label in labels:
            hit = any(f.kind == label.kind and f.start <= label.start and label.end <= f.end for f in findings)
            (result.found if hit else result.missed)[label.kind] += 1
        for f in findings:
            if not any(f.start < lab.end and lab.start < f.end for lab in labels):
                result.false[f.kind] += 1
    return result
