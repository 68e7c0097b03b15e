"""`neuron demo`: `neuron up` plus the simulator, on embedded defaults.

Simulator (the parking vendor's API on loopback) → Airflow runs the `vehicle_passes`
ingest DAG for each hour of the simulated day, then the publish DAG of every feed built
from it → DuckDB staging and marts → signed Parquet partitions in the lake. Consumers:
the district (a signing key to pull with) and public security, whose X25519 encryption
key lets `traffic.vehicle_passes` be published to it with plates sealed to that key.
Then (unless --no-serve, the non-interactive path tests and benchmarks use) the hub runs
for real under `neuron up`: scheduler, DAG processor, API server, export API, with the
simulator still serving, until Ctrl-C.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select

from kernel.errors import FatalError
from kernel.settings import HttpSource, Settings, load_settings
from neuron.airflow_runner import PROGRESS, runner_command

MARKER = ".neuron-demo"
DEMO_CONSUMER = "district"
POLICE_CONSUMER = "public_security"
DEMO_STREAMS = ["vehicle_passes"]  # what the simulator serves in the demo
DEMO_ADMIN = "demo-admin"
# What each demo consumer pulls in "try next": the district an aggregate, the police the
# passes themselves (plates sealed to its encryption key).
DEMO_PULLS = {DEMO_CONSUMER: "traffic.vehicle_flow_hourly", POLICE_CONSUMER: "traffic.vehicle_passes"}


def _fresh_home(home: Path) -> None:
    # Only a folder an earlier demo made is wiped: never a user's folder by mistake.
    if home.exists():
        if not (home / MARKER).exists():
            raise FatalError(f"{home} exists and is not a demo folder; choose another --home")
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (home / MARKER).write_text("made by `neuron demo`; deleted by the next one\n")


def _write_private(path: Path, private: Ed25519PrivateKey | X25519PrivateKey) -> None:
    path.parent.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )


def _public_pem(private: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _demo_consumer_key(settings: Settings, home: Path) -> tuple[str, Path]:
    """The district's signing key (to pull with), kept under the demo folder."""
    from api.consumers import register_consumer

    private = Ed25519PrivateKey.generate()
    path = home / "consumer" / f"{DEMO_CONSUMER}.pem"
    _write_private(path, private)
    return register_consumer(settings, DEMO_CONSUMER, _public_pem(private)), path


def _public_security_keys(settings: Settings, home: Path) -> str:
    """Public security's signing and X25519 encryption keys (as `neuron consumers add
    --encryption-key` registers them): plates in `traffic.vehicle_passes` are sealed to it."""
    from api.consumers import register_consumer
    from warehouse.recipients import register_encryption_key

    signing, sealing = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
    _write_private(home / "consumer" / f"{POLICE_CONSUMER}.pem", signing)
    _write_private(home / "consumer" / f"{POLICE_CONSUMER}.x25519.pem", sealing)
    register_consumer(settings, POLICE_CONSUMER, _public_pem(signing))
    return register_encryption_key(settings, POLICE_CONSUMER, _public_pem(sealing))


def _run_airflow(console: Console, home: Path, env: dict[str, str], day: date, tz: str) -> None:
    first_end = datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(tz)) + timedelta(hours=1)
    log_path = home / "logs" / "airflow.log"
    log_path.parent.mkdir(exist_ok=True)
    cmd = runner_command(DEMO_STREAMS, first_end, 24)
    total = 24 * len(DEMO_STREAMS)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with open(log_path, "w") as log, Progress(*columns, console=console) as progress:
        task = progress.add_task("Airflow: preparing metadata DB", total=total)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        assert proc.stdout is not None
        failed = 0
        for line in proc.stdout:
            if not line.startswith(PROGRESS):
                continue
            event = json.loads(line.removeprefix(PROGRESS))
            ok = event.get("state") in ("success", "DagRunState.SUCCESS")
            if event["event"] == "ready":
                progress.update(task, description=f"Airflow: {', '.join(DEMO_STREAMS)}, hourly runs of {day}")
            elif event["event"] == "run":
                failed += not ok
                progress.update(task, completed=event["done"])
            elif event["event"] == "publish":
                failed += not ok
                progress.console.print(f"publish DAG {event['dag']}: {event['state']}")
        if proc.wait() != 0:
            raise FatalError(f"{failed or 'some'} DAG run(s) failed; see {log_path}")


def _summary(console: Console, settings: Settings) -> None:
    from warehouse.control import session_scope
    from warehouse.models import LoadRecord, Partition

    with session_scope(settings.control_url) as s:
        extracted, loaded, quarantined = s.execute(
            select(
                func.sum(LoadRecord.rows_extracted),
                func.sum(LoadRecord.rows_loaded),
                func.sum(LoadRecord.rows_quarantined),
            )
        ).one()
        parts = s.execute(
            select(Partition.consumer, Partition.feed, func.count(), func.sum(Partition.rows)).group_by(
                Partition.consumer, Partition.feed
            )
        ).all()
    console.print(f"passes extracted {extracted}, loaded {loaded}, quarantined {quarantined} (with reasons)")
    table = Table("consumer", "feed", "partition versions", "rows")
    for consumer, feed, count, rows in parts:
        table.add_row(consumer, feed, str(count), str(rows))
    console.print(table)


def _demo_admin(settings: Settings) -> str:
    """A console account for the demo (what `neuron admins add demo-admin --role admin` makes),
    with a generated password that is printed once: the demo's hub is on loopback only."""
    from api.admin.accounts import add_admin

    password = secrets.token_urlsafe(12)
    add_admin(settings.control_url, DEMO_ADMIN, "admin", password)
    return password


def run_demo(
    console: Console, home: Path, day: date | None, serve_api: bool, port: int, airflow_port: int = 8080
) -> None:
    """Run the demo; with `serve_api`, serve the export API until Ctrl-C."""
    from privacy.keys import init_keys
    from simulator.parking import ParkingSimulator
    from simulator.server import start_parking_api
    from simulator.truth import write_truth
    from warehouse.migrations import migrate

    started = time.monotonic()
    _fresh_home(home)
    token = secrets.token_urlsafe(16)
    sim = ParkingSimulator(seed=7)
    with start_parking_api(sim, token=token) as vendor:
        env = {
            **os.environ,
            "NEURON_HOME": str(home),
            "NEURON_PARKING__BASE_URL": vendor.url,
            "NEURON_PARKING__TOKEN": token,
            "AIRFLOW_HOME": str(home / "airflow"),
        }
        os.environ.update({k: env[k] for k in ("NEURON_HOME", "NEURON_PARKING__BASE_URL", "NEURON_PARKING__TOKEN")})
        settings = load_settings(home=home, parking=HttpSource(base_url=vendor.url, token=token))
        settings.api.port = port
        if serve_api:
            # Before any work: a taken port is said now, in one line, not after the batch day.
            from neuron.up import Service, check_ports

            check_ports(
                [
                    Service("export-api", [], listens=[(settings.api.host, port)]),
                    Service("api-server", [], listens=[("127.0.0.1", airflow_port)]),
                ]
            )
        tz = settings.timezone
        day = day or (datetime.now(ZoneInfo(tz)).date() - timedelta(days=1))
        console.rule(f"Neuron Hub demo — {settings.community_name} ({settings.community_id}), {day}")
        console.print(f"simulated parking vendor API on {vendor.url}; hub state in {home}")
        init_keys(settings)
        migrate(settings.control_url)
        _demo_consumer_key(settings, home)
        sealed_to = _public_security_keys(settings, home)
        admin_password = _demo_admin(settings)
        console.print(f"public security's encryption key {sealed_to}: plates are sealed to it")
        _run_airflow(console, home, env, day, tz)
        write_truth(sim, settings.state_path / "truth.json")
        _summary(console, settings)
        console.print(f"batch work done in {time.monotonic() - started:.0f} s")
        if serve_api:
            _try_next(console, settings, port, airflow_port, home, admin_password)
            _run_up(settings, env, airflow_port)
            write_truth(sim, settings.state_path / "truth.json")  # what the live hours added


def _try_next(
    console: Console, settings: Settings, port: int, airflow_port: int, home: Path, admin_password: str
) -> None:
    hub = f"http://{settings.api.host}:{port}"
    console.rule("Try next (in another terminal)")
    pulls = []
    for consumer, feed in DEMO_PULLS.items():
        key_id = _key_id_of(settings, consumer)
        pulls.append(
            f"# as {consumer}:\n"
            f".venv/bin/neuron pull {feed} --hub {hub} \\\n"
            f"    --key-id {key_id} --private-key {home / 'consumer' / f'{consumer}.pem'} "
            f"--out {home / 'pulled' / consumer}"
        )
    console.print(
        "\n".join(pulls) + "\n"
        f"curl -s {hub}/.well-known/jwks.json     # the hub's public keys\n"
        f"curl -si {hub}/v1/feeds                 # unsigned: 401, and the refusal is audited\n"
        f"Admin console: {hub}/admin   account {DEMO_ADMIN}, password {admin_password}  (printed once)\n"
        f"  more accounts: NEURON_HOME={home} .venv/bin/neuron admins add NAME --role admin|auditor\n"
        f"A ballot receipt (from the vote page), once governance.votes is published to you:\n"
        f"  signed GET {hub}/v1/feeds/governance.votes/proof?receipt=RECEIPT > proof.json\n"
        f"  .venv/bin/neuron verify-ballot proof.json --receipt RECEIPT --choice agree --area 89.5 --root MERKLE_ROOT\n"
        f"Airflow UI: http://127.0.0.1:{airflow_port}        # the DAG suite, unpaused, running on schedule",
        soft_wrap=True,
    )
    console.print(f"starting the hub (`neuron up`) with the export API on {hub} — Ctrl-C to stop")


def _key_id_of(settings: Settings, consumer: str) -> str:
    from api.consumers import list_consumers

    return next(k.key_id for c in list_consumers(settings) if c.name == consumer for k in c.keys)


def _run_up(settings: Settings, env: dict[str, str], airflow_port: int = 8080) -> None:
    """The hub for real: `neuron up` without the collector and relay (no MQTT devices here),
    ingesting the simulator's streams on their schedule."""
    from neuron.up import AirflowPorts, free_port, run_up

    os.environ.update(
        {"AIRFLOW_HOME": env["AIRFLOW_HOME"], "NEURON_DAG_STREAMS": ",".join(DEMO_STREAMS)}
        | {k: v for k, v in env.items() if k.startswith("NEURON_")}
        | {"NEURON_API__PORT": str(settings.api.port)}
    )
    ports = AirflowPorts(api=airflow_port, scheduler_health=free_port(), log_server=free_port())
    # The batch day made the DAGs paused: the live hub must run them on schedule.
    run_up(settings, collect=False, ports=ports, relay=False, unpause=True)  # no MQTT devices in this demo
