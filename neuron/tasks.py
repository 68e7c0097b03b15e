"""What Airflow tasks share: settings from the environment, and the error split.

Airflow retries a failed task by default; a FatalError (bad credentials, a rejected
batch, a broken contract) must fail at once instead, so it is re-raised as
AirflowFailException. Retriable errors propagate and are retried with backoff.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from neuron.errors import FatalError

T = TypeVar("T")


@contextmanager
def fatal_fails_fast() -> Iterator[None]:
    """Turn the hub's fatal errors into Airflow's no-retry failure."""
    try:
        yield
    except FatalError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def run_stage(stage: Callable[..., T], *args: Any) -> T:
    """Run one pipeline stage with the hub's settings (from NEURON_* and the TOML file)."""
    from neuron.logging import setup_logging
    from neuron.settings import load_settings

    setup_logging()
    with fatal_fails_fast():
        return stage(load_settings(), *args)


def as_datetime(value: Any) -> datetime:
    """A data-interval bound as a plain timezone-aware datetime (Airflow passes pendulum)."""
    return datetime.fromisoformat(value.isoformat())
