"""What the DAG tasks decide at run time (days to publish, whether a key is due), and the
daily DAGs (key rotation, retention, quality) run by Airflow's `dag.test()`."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from kernel.settings import REPO_ROOT
from neuron.airflow_runner import PROGRESS
from neuron.tasks import affected_days, interval_days, rotate_signing_key_if_due
from privacy.keys import HubKeys, init_keys, rotate_signing_key
from tests.conftest import make_settings
from tests.dags.airflow_hub import airflow_env, hub_env
from warehouse.migrations import migrate

D20, D21 = "2026-11-20", "2026-11-21"
Events = dict[str, list[SimpleNamespace]] | None


def _event(**extra: object) -> SimpleNamespace:
    return SimpleNamespace(extra=extra)


@pytest.mark.parametrize(
    ("events", "conf", "days"),
    [
        # the union of the days every triggering event names, once each, in order
        ({"a": [_event(days=["2026-11-21"]), _event(days=["2026-11-20", "2026-11-21"])]}, None, [D20, D21]),
        ({"a": [_event(days=["2026-11-21"])], "b": [_event(days=[])]}, None, ["2026-11-21"]),
        # an empty load touched no day: nothing to publish
        ({"a": [_event(days=[])]}, None, []),
        # an event without days (a manual asset update): every day, safely (idempotent)
        ({"a": [_event()]}, None, None),
        # a manual run names its days, or none: every day
        (None, {"days": ["2026-11-19"]}, ["2026-11-19"]),
        (None, {}, None),
    ],
)
def test_affected_days(events: Events, conf: dict[str, object] | None, days: list[str] | None) -> None:
    assert affected_days(events, conf) == days


def test_interval_days_are_local() -> None:
    start = datetime(2026, 11, 20, 15, tzinfo=UTC)  # 23:00 in Shanghai
    assert interval_days(start, start + timedelta(hours=1), "Asia/Shanghai") == ["2026-11-20"]
    assert interval_days(start, start + timedelta(hours=2), "Asia/Shanghai") == ["2026-11-20", "2026-11-21"]


def test_key_rotation_is_due_once_per_interval(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    init_keys(settings)
    migrate(settings.control_url)
    first = HubKeys.load(settings).active_signing_key
    due = datetime.now(UTC)  # the interval's end: after the first key was made, before the run
    rotated = rotate_signing_key_if_due(settings, due)
    assert rotated["rotated"] and rotated["signing_key"] != first.kid
    again = rotate_signing_key_if_due(settings, due)  # a re-run of the same interval
    assert again == {"rotated": False, "signing_key": rotated["signing_key"], "manifests_resigned": 0}
    jwks = {k["kid"] for k in HubKeys.load(settings).jwks()["keys"]}
    assert jwks == {first.kid, rotated["signing_key"]}  # the old public key stays listed


_DAILY = """
import json, sys
from neuron.airflow_runner import DAGS_FOLDER, prepare_airflow
from airflow.dag_processing.dagbag import DagBag
prepare_airflow()
bag = DagBag(dag_folder=str(DAGS_FOLDER))
for dag_id in ("key_rotation", "retention", "quality"):
    run = bag.dags[dag_id].test()
    print("%s" + json.dumps({"dag": dag_id, "state": str(run.state)}), flush=True)
"""


@pytest.mark.slow
def test_the_daily_dags_run(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    init_keys(settings)
    migrate(settings.control_url)
    # The active key dates from June: the run's quarter (ending 1 October) makes it due.
    rotate_signing_key(settings, datetime(2026, 6, 1, tzinfo=UTC))
    env = airflow_env(tmp_path, **{**hub_env(tmp_path, "http://127.0.0.1:9"), "NEURON_MASTER_SECRET": ""})
    env.pop("NEURON_MASTER_SECRET")  # this hub's master secret is the one init_keys wrote
    proc = subprocess.run(
        [sys.executable, "-c", _DAILY % PROGRESS], env=env, capture_output=True, text=True, cwd=REPO_ROOT, timeout=600
    )
    states = [json.loads(line.removeprefix(PROGRESS)) for line in proc.stdout.splitlines() if line.startswith(PROGRESS)]
    assert [s["state"] for s in states] == ["success"] * 3, proc.stderr[-3000:]
    keys = HubKeys.load(settings)
    assert len(keys.signing_keys) == 3 and keys.active_signing_key.created > datetime(2026, 10, 1, tzinfo=UTC)
    assert (settings.state_path / "quality" / "quality.json").exists()
