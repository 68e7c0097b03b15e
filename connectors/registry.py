"""The source streams this hub knows, derived from the contracts (schemas/contracts/*.yaml):
each contract's `source` block names its family, schedule and title, so a stream is declared
in one file.

Kept free of heavy imports: Airflow parses the DAG files that read this registry, and the
connector families are imported only when a task runs (`make_stream`).
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.base import SourceState, Stream
from kernel.errors import ConfigError
from kernel.settings import Settings
from schemas.contract import CONTRACTS_DIR, load_contract


@dataclass(frozen=True)
class StreamSpec:
    """How one stream is declared to the hub (read from its contract)."""

    name: str
    system: int  # 1–9, the seed's numbering
    schedule: str  # cron, in the hub's timezone: when its ingest DAG runs
    family: str  # connectors/families.py
    title: str


def _streams() -> dict[str, StreamSpec]:
    specs = {}
    for path in sorted(CONTRACTS_DIR.glob("*.yaml")):
        contract = load_contract(path.stem)
        source = contract.source
        if source is None:
            raise ConfigError(f"{path.name}: a stream's contract needs a `source` block (family, schedule, title)")
        specs[contract.name] = StreamSpec(contract.name, contract.system, source.schedule, source.family, source.title)
    # The order the hub has always listed them in: by system, then name.
    return dict(sorted(specs.items(), key=lambda item: (item[1].system, item[0])))


STREAMS: dict[str, StreamSpec] = _streams()


def make_stream(name: str, settings: Settings, state: SourceState | None = None) -> Stream:
    """The configured stream called `name`, with the state the runner hands it."""
    if name not in STREAMS:
        raise ConfigError(f"unknown stream {name!r}; known: {', '.join(sorted(STREAMS))}")
    from connectors.families import open_stream  # the families' imports are heavy: only when a task runs

    return open_stream(settings, load_contract(name), state)
