"""What Airflow tasks share: settings from the environment, the error split, and the small
decisions the DAGs make at run time (which days to publish, whether a key is due).

Airflow retries a failed task by default; a FatalError (bad credentials, a rejected
batch, a broken contract) must fail at once instead, so it is re-raised as
AirflowFailException. Retriable errors propagate and are retried with backoff.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from kernel.errors import FatalError

if TYPE_CHECKING:
    from kernel.settings import Settings

T = TypeVar("T")


@contextmanager
def fatal_fails_fast() -> Iterator[None]:
    """Turn the hub's fatal errors into Airflow's no-retry failure."""
    try:
        yield
    except FatalError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def community_settings(community: str | None = None) -> Settings:
    """The hub's settings; for one community of a subdistrict suite, that community's.

    A community `c` lives under `$NEURON_HOME/communities/c/` (its own state, warehouse and
    lake) and reads `hub.toml` there when present; everything else comes from NEURON_*.
    """
    from kernel.settings import load_settings

    if community is None:
        return load_settings()
    home = Path(os.environ.get("NEURON_HOME") or Path.cwd()) / "communities" / community
    config = home / "hub.toml"
    if config.exists():
        # The TOML source is read from NEURON_CONFIG when Settings is built; a task runs in
        # its own process, so setting it here changes no other task.
        os.environ["NEURON_CONFIG"] = str(config)
    return load_settings(home=home, community_id=community)


def run_stage(stage: Callable[..., T], *args: Any, community: str | None = None) -> T:
    """Run one pipeline stage with the hub's settings (from NEURON_* and the TOML file)."""
    from kernel.logging import setup_logging
    from kernel.private import restrict_process

    restrict_process()  # work files, databases and lake files are the hub user's only
    setup_logging()
    with fatal_fails_fast():
        return stage(community_settings(community), *args)


def as_datetime(value: Any) -> datetime:
    """A data-interval bound as a plain timezone-aware datetime (Airflow passes pendulum)."""
    return datetime.fromisoformat(value.isoformat())


def affected_days(events: Mapping[Any, Iterable[Any]] | None, conf: Mapping[str, Any] | None) -> list[str] | None:
    """The local days a publish run must (re)publish: the union of the days its triggering
    asset events carry, or `conf["days"]` of a manual run; None (every day) when neither
    says, which is safe because publishing is idempotent (unchanged bytes, no new version).
    """
    if conf and conf.get("days") is not None:
        return sorted({str(d) for d in conf["days"]})
    if not events:
        return None
    days: set[str] = set()
    for asset_events in events.values():
        for event in asset_events:
            extra = getattr(event, "extra", None) or {}
            if "days" not in extra:
                return None  # an event from elsewhere (a manual asset update): recompute all
            days.update(str(d) for d in extra["days"] or [])
    return sorted(days)


def interval_days(start: datetime, end: datetime, timezone: str) -> list[str]:
    """The local calendar days a data interval [start, end) touches."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(timezone)
    first, last = start.astimezone(tz).date(), (end - timedelta(microseconds=1)).astimezone(tz).date()
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def rotate_signing_key_if_due(settings: Settings, due_before: datetime) -> dict[str, Any]:
    """Rotate the hub's signing key unless the active one was made at or after `due_before`.

    The rotation DAG passes its data interval's start: a re-run (or a retry after the key
    was written) finds the fresh key and rotates nothing, so the task is idempotent. Older
    public keys stay in the JWKS until what they signed expires (privacy/keys.py).
    """
    from neuron.housekeeping import keys_resign, keys_rotate
    from privacy.keys import HubKeys

    active = HubKeys.load(settings).active_signing_key
    if active.created >= due_before:
        # A re-run still re-signs what a publish racing the rotation signed with the old key.
        return {"rotated": False, "signing_key": active.kid, "manifests_resigned": keys_resign(settings)["resigned"]}
    return {"rotated": True, **keys_rotate(settings)}
