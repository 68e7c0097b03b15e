"""`neuron scrub`: what the free-text scrubber would let leave, shown to an admin.

JSON lines `{"id": …, "text": …}` on standard input become `{"id": …, "text": <scrubbed>}`
on standard output, one for one and in order, exactly as de-identification scrubs a
free-text field (privacy/scrub.py): the same recognisers, the names found without a
roster, and the hub's roster of registered residents when this machine's hub has one
(`--no-roster` leaves it out). `--explain` adds each finding's kind and span, so a reviewer
sees why a word went. A bad line stops the run with its line number, never its content.
"""

from __future__ import annotations

import json
import sys
from typing import IO, Annotated, Any

import typer

from kernel.errors import NeuronError


class BadLine(NeuronError):
    """A line of input that is not a JSON object with a string "text"."""


def _roster(use: bool) -> frozenset[str]:
    """The hub's roster, or none (with a note on stderr) where this machine has no hub."""
    if not use:
        return frozenset()
    from kernel.settings import load_settings
    from privacy.keys import HubKeys
    from privacy.roster import load_roster

    try:
        settings = load_settings()
        return load_roster(settings, HubKeys.load(settings))
    except NeuronError as exc:
        print(f"note: scrubbing without the roster ({exc})", file=sys.stderr)
        return frozenset()


def scrub_lines(source: IO[str], sink: IO[str], roster: frozenset[str] = frozenset(), explain: bool = False) -> int:
    """Scrub every JSON line of `source` into `sink`; returns how many were written."""
    from privacy.scrub import NameMatcher, find_identifiers, scrub_text

    names = NameMatcher(roster)
    written = 0
    for number, line in enumerate(source, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise BadLine(f'line {number}: not JSON; each line must be an object with "id" and "text"') from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise BadLine(f'line {number}: needs a string "text" (and an "id"); each line is one JSON object')
        out: dict[str, Any] = {"id": record.get("id"), "text": scrub_text(record["text"], names)}
        if explain:
            out["found"] = [
                {"kind": f.kind, "start": f.start, "end": f.end} for f in find_identifiers(record["text"], names)
            ]
        sink.write(json.dumps(out, ensure_ascii=False) + "\n")
        written += 1
    return written


def scrub(
    roster: Annotated[bool, typer.Option(help="Match the hub's roster of residents' names too.")] = True,
    explain: Annotated[bool, typer.Option(help="Add each finding's kind and span to the output.")] = False,
) -> None:
    """Scrub free text as the hub does before it leaves: JSON lines {"id","text"} on stdin, scrubbed on stdout."""
    try:
        scrub_lines(sys.stdin, sys.stdout, _roster(roster), explain)
    except NeuronError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(code=1) from exc
