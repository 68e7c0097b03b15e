"""Ground truth of a simulation run: the plates that must never leak, and the injected faults."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from simulator.parking import ParkingSimulator


def write_truth(sim: ParkingSimulator, path: Path) -> None:
    """Write {"plates": [...], "fault_log": {...}} for the days `sim` has generated so far."""
    payload = {"plates": sorted(sim.all_plates()), "fault_log": dict(sorted(sim.fault_log.items()))}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
    # Plates are personal data even in a simulation: keep the file private to its owner.
    tmp.chmod(0o600)
    os.replace(tmp, path)


def read_truth(path: Path) -> dict[str, Any]:
    """Read a file written by write_truth."""
    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return data
