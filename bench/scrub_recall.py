"""Recall of the free-text scrubber per identifier kind, and how many look-alikes it keeps,
on texts written by hand as residents write (bench/data/scrub_texts, compiled to
bench/data/scrub_labelled.jsonl) — not the simulator's templates (issue 16, item 1).

Measured in the same run: the scrubber as it ran in production before (bench/scrub_floor.py,
no roster), and today's scrubber step by step — the recognisers alone, + name patterns,
+ jieba's person-name tags, + the roster of registered residents. A label counts as found
when a finding covers it whole (whatever kind the finding has: the text is hidden either
way; the kind-exact figure is given too). A look-alike is kept when no finding touches it.
Throughput is texts per second over the set, best of three, old against new.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data" / "scrub_labelled.jsonl"
HELDOUT = Path(__file__).resolve().parent / "data" / "scrub_heldout.jsonl"
# Written later, each after a change of the scrubber, and measured once when written: the
# figures of that first measurement are the honest ones (FIRST_MEASURED); today's are given too.
LATER_HELDOUT = {
    "heldout3": Path(__file__).resolve().parent / "data" / "scrub_heldout3.jsonl",
    "heldout4": Path(__file__).resolve().parent / "data" / "scrub_heldout4.jsonl",
}
FIRST_MEASURED = {
    "heldout3": "**0.926 overall** (200/216), names 0.885 (115/130), rooms 37/38, every other kind 1.0; look-alikes"
    " kept 0.988 (159/161)",
    "heldout4": "**0.916 overall** (87/95), names 0.912 (52/57), rooms 0.833 (15/18), every other kind 1.0;"
    " look-alikes kept 0.983 (59/60)",
}
KINDS = [
    "NAME",
    "ID_NUMBER",
    "MOBILE",
    "LANDLINE",
    "PLATE",
    "ROOM",
    "BANK_CARD",
    "EMAIL",
    "WECHAT_ID",
    "QQ",
    "PASSPORT",
]
# The floor's kind names for the same identifiers.
ALIASES = {"OLD_ID_NUMBER": "ID_NUMBER"}


@dataclass
class Score:
    found: Counter[str] = field(default_factory=Counter)
    exact: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)
    kept: Counter[str] = field(default_factory=Counter)
    lookalikes: Counter[str] = field(default_factory=Counter)
    spurious: int = 0  # findings that touch neither a label nor a look-alike
    missed: list[str] = field(default_factory=list)

    def recall(self, kind: str | None = None) -> float:
        found = self.found[kind] if kind else sum(self.found.values())
        total = self.total[kind] if kind else sum(self.total.values())
        return found / total if total else 1.0

    def keep_rate(self) -> float:
        return sum(self.kept.values()) / max(1, sum(self.lookalikes.values()))


def load(path: Path = DATA) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


Finder = Callable[[str], list[Any]]


def score(rows: list[dict[str, Any]], find: Finder) -> Score:
    result = Score()
    for row in rows:
        text = row["text"]
        findings = find(text)
        for start, end, kind in row["labels"]:
            result.total[kind] += 1
            cover = [f for f in findings if f.start <= start and end <= f.end]
            if cover:
                result.found[kind] += 1
                result.exact[kind] += any(ALIASES.get(f.kind, f.kind) == kind for f in cover)
            else:
                result.missed.append(f"{kind}\t{text[start:end]}\t{text}")
        for start, end, kind in row["keep"]:
            result.lookalikes[kind] += 1
            result.kept[kind] += not any(f.start < end and start < f.end for f in findings)
        spans = [(s, e) for s, e, _ in row["labels"]] + [(s, e) for s, e, _ in row["keep"]]
        result.spurious += sum(1 for f in findings if not any(f.start < e and s < f.end for s, e in spans))
    return result


def finders(rows: list[dict[str, Any]]) -> dict[str, Finder]:
    from bench import scrub_floor
    from privacy.scrub import NameMatcher, find_identifiers
    from simulator.community import Community

    # The roster as production has it: every registered resident of the community (the
    # simulator's 1,400-odd names) and the residents the texts name as registered ("N+").
    roster = {r.name for r in Community(seed=7).residents} | {n for row in rows for n in row["roster"]}
    matcher = NameMatcher(roster)
    return {
        "before (production, no roster)": scrub_floor.find_identifiers,
        "recognisers, no names": lambda t: find_identifiers(t, unlisted_names=False),
        "+ name patterns": lambda t: find_identifiers(t, segmenter=False),
        "+ jieba person names": lambda t: find_identifiers(t),
        "+ roster (as in production)": lambda t: find_identifiers(t, matcher),
        "jieba alone for names": lambda t: _jieba_only(t),
    }


def _jieba_only(text: str) -> list[Any]:
    from privacy.names import segmenter_names
    from privacy.normalise import normalise
    from privacy.scrub import find_identifiers

    return find_identifiers(text, unlisted_names=False) + segmenter_names(normalise(text))


def _rate(rows: list[dict[str, Any]], find: Finder) -> float:
    texts = [row["text"] for row in rows]
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for text in texts:
            find(text)
        best = max(best, len(texts) / (time.perf_counter() - start))
    return best


def run() -> dict[str, Any]:
    rows = load()
    configs = finders(rows)
    configs["+ jieba person names"]("预热")  # load jieba's dictionary outside the timing
    results: dict[str, Any] = {"texts": len(rows), "configs": {}}
    for label, find in configs.items():
        s = score(rows, find)
        results["configs"][label] = {
            "recall": {k: (s.found[k], s.exact[k], s.total[k]) for k in KINDS},
            "overall": s.recall(),
            "keep": s.keep_rate(),
            "kept_by_kind": {k: (s.kept[k], s.lookalikes[k]) for k in sorted(s.lookalikes)},
            "spurious": s.spurious,
            "missed": s.missed,
        }
    heldout = load(HELDOUT)
    results["heldout"] = {}
    for label in ("before (production, no roster)", "+ roster (as in production)"):
        s = score(heldout, configs[label])
        results["heldout"][label] = {
            "recall": {k: (s.found[k], s.exact[k], s.total[k]) for k in KINDS},
            "overall": s.recall(),
            "keep": s.keep_rate(),
            "spurious": s.spurious,
            "missed": s.missed,
            "texts": len(heldout),
        }
    results["later"] = {}
    for name, path in LATER_HELDOUT.items():
        later = load(path)
        results["later"][name] = {}
        for label in ("before (production, no roster)", "+ roster (as in production)"):
            s = score(later, configs[label])
            results["later"][name][label] = {
                "recall": {k: (s.found[k], s.exact[k], s.total[k]) for k in KINDS},
                "overall": s.recall(),
                "keep": s.keep_rate(),
                "kept": sum(s.kept.values()),
                "lookalikes": sum(s.lookalikes.values()),
                "missed": s.missed,
                "texts": len(later),
            }
    results["rate_before"] = _rate(rows, configs["before (production, no roster)"])
    results["rate_now"] = _rate(rows, configs["+ roster (as in production)"])
    results["rate_no_jieba"] = _rate(rows, configs["+ name patterns"])
    results["load"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return results


def report(r: dict[str, Any]) -> str:
    configs = r["configs"]
    labels = list(configs)
    first = configs[labels[0]]
    totals = {k: first["recall"][k][2] for k in KINDS}
    head = "| kind | labelled | " + " | ".join(labels) + " |"
    lines = [
        f"{r['texts']} texts written by hand (bench/data/scrub_texts/*.txt → bench/data/scrub_labelled.jsonl), "
        f"{sum(totals.values())} labelled identifiers, {sum(b for _, b in first['kept_by_kind'].values())}"
        " look-alikes that must stay (order numbers, amounts, dates, times, hotlines, counts, buildings). Recall = the"
        " share of labels covered whole by a finding; in brackets, by a finding of the same kind.",
        "",
        head,
        "|" + "---|" * (len(labels) + 2),
    ]
    for k in KINDS:
        cells = []
        for label in labels:
            found, exact, total = configs[label]["recall"][k]
            cells.append(f"{found / total:.3f} ({exact / total:.2f})" if total else "–")
        lines.append(f"| {k} | {totals[k]} | " + " | ".join(cells) + " |")
    lines.append(
        "| **overall** | "
        + str(sum(totals.values()))
        + " | "
        + " | ".join(f"**{configs[label]['overall']:.3f}**" for label in labels)
        + " |"
    )
    lines.append("| look-alikes kept | | " + " | ".join(f"{configs[label]['keep']:.3f}" for label in labels) + " |")
    lines.append(
        "| findings touching no label | | " + " | ".join(str(configs[label]["spurious"]) for label in labels) + " |"
    )
    held = r["heldout"]
    before, after = held["before (production, no roster)"], held["+ roster (as in production)"]
    lines += [
        "",
        "**Held-out sets** (bench/data/scrub_heldout*/): the table above is the development set, on which the"
        " recognisers were tuned, so it flatters them. Each held-out file was written after a change of the scrubber"
        " and measured once, as written; its misses were then generalised (by failure class, never by string), which"
        " makes it a development set too, and the next file was written afterwards. heldout.txt (97 texts): **0.893"
        " overall, names 0.817**. heldout2.txt (52 texts): **0.964, names 0.956**. Both, before this round: 0.972"
        " (7 misses: a bare room number beside another room, a room before a part of the home, given names and"
        " nicknames with no surname, a rare surname before 女士, a cue word before a wordy surname).",
        "",
        "Per file, the floor (the scrubber as production ran it before issue 16) and today's scrubber:",
        "",
        "| kind | " + " | ".join(f"{n} labelled | floor | now" for n in ["heldout 1+2", *r["later"]]) + " |",
        "|---|" + "---|---|---|" * (1 + len(r["later"])),
    ]
    sets = [
        (before, after),
        *((v["before (production, no roster)"], v["+ roster (as in production)"]) for v in r["later"].values()),
    ]
    for k in KINDS:
        cells = []
        for b, a in sets:
            f0, _, total = b["recall"][k]
            f1 = a["recall"][k][0]
            cells.append(f"{total} | {f0 / total:.3f} | {f1 / total:.3f}" if total else "0 | – | –")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines.append(
        "| **overall** | "
        + " | ".join(
            f"{sum(v[2] for v in a['recall'].values())} | **{b['overall']:.3f}** | **{a['overall']:.3f}**"
            for b, a in sets
        )
        + " |"
    )
    lines.append("| look-alikes kept | " + " | ".join(f"| {b['keep']:.3f} | {a['keep']:.3f}" for b, a in sets) + " |")
    lines += [
        "",
        "**On text it was not tuned on, the scrubber does not meet the goal** (recall ≥ 0.99 overall and ≥ 0.95 per"
        " kind): the last two files, each measured once as written, gave 0.926 and 0.916 overall, names 0.885 and"
        " 0.912, rooms 0.974 and 0.833; every other kind 1.0 on both, look-alikes kept ≥ 0.98. The 1.000 figures"
        " above are on files whose misses were generalised afterwards, so they flatter it like the development set."
        " What still escapes: given names and nicknames with no surname outside a cue (小宝, 豆豆), surnames missing"
        " from the list (荀, 汝), foreign names in Chinese characters (伊万), rooms written with a Chinese floor"
        " (二楼二零三) or after 我家 with no other cue.",
    ]
    for name, v in r["later"].items():
        a = v["+ roster (as in production)"]
        lines += [
            "",
            f"**{name}** ({a['texts']} texts, {sum(x[2] for x in a['recall'].values())} identifiers,"
            f" {a['lookalikes']} look-alikes), first measured when written: {FIRST_MEASURED[name]}. Missed now"
            f" ({len(a['missed'])}): "
            + ("; ".join(f"{m.split(chr(9))[0]} `{m.split(chr(9))[1]}`" for m in a["missed"]) or "none")
            + ".",
        ]
    now = configs["+ roster (as in production)"]
    lines += [
        "",
        "Look-alikes kept by kind (production configuration): "
        + ", ".join(f"{k} {a}/{b}" for k, (a, b) in now["kept_by_kind"].items())
        + ".",
        "",
        f"Throughput over the set (best of 3): before {r['rate_before']:,.0f} texts/s; now {r['rate_now']:,.0f} texts/s"
        f" with jieba and the roster ({r['rate_before'] / r['rate_now']:.1f}× slower), {r['rate_no_jieba']:,.0f}"
        " texts/s without jieba. jieba's segmentation is most of the cost; scrub_column scrubs each distinct text"
        " once, and a community's day has a few hundred texts. The machine is shared by other jobs (load average"
        f" {r['load']} on 2 cores at the end of this run): absolute rates move from run to run, the ratio less so.",
        "",
        f"Missed in the production configuration ({len(now['missed'])}):",
        "",
        *(f"- {m.split(chr(9))[0]} `{m.split(chr(9))[1]}` in “{m.split(chr(9))[2]}”" for m in now["missed"]),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run()))
