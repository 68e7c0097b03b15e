"""Ground truth of a simulation run: the plates that must never leak, and the injected faults."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from simulator.parking import ParkingSimulator


def write_truth(sim: ParkingSimulator, path: Path, others: Iterable[Mapping[str, Iterable[str]]] = ()) -> None:
    """Write {"plates": [...], "fault_log": {...}, KIND: [...]} for the days `sim` has generated
    so far; `others` are the `ground_truth()` of the other simulated systems (platform,
    door access, intercom: names, ID numbers, phones, openids, addresses, cards ...)."""
    payload: dict[str, Any] = {"plates": sorted(sim.all_plates()), "fault_log": dict(sorted(sim.fault_log.items()))}
    kinds: dict[str, set[str]] = {}
    for truth in others:
        for kind, values in truth.items():
            kinds.setdefault(kind, set()).update(values)
    payload.update({kind: sorted(values) for kind, values in sorted(kinds.items())})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
    # Plates are personal data even in a simulation: keep the file private to its owner.
    tmp.chmod(0o600)
    os.replace(tmp, path)


def identifiers_of(truth: Mapping[str, Any]) -> set[str]:
    """Every identifier a truth file lists, whatever its kind (the fault log is not one)."""
    return {v for kind, values in truth.items() if kind != "fault_log" for v in values}


def read_truth(path: Path) -> dict[str, Any]:
    """Read a file written by write_truth."""
    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return data
