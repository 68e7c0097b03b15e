"""`neuron demo`: the whole of Music Square through the hub, then the hub running live.

The simulator (simulator/live.py) serves every system over its own protocol: the parking and
intercom/CCTV vendor APIs, the WeChat platform's database, the door-access GBK export in its
drop folder and every MQTT device on a community broker; the district's and the police's
brokers are private ones too (simulator/demo_day.py). The batch day:

1. the hub is made (keys, certificate, control DB) with three consumers: the district,
   public security (its X25519 key: plates and in-home devices sealed to it) and open data;
2. the devices publish the whole simulated day while the hub's collector lands it and its
   relay forwards every alarm, signed, to the district's and the police's brokers;
3. Airflow runs the `hub` DAG (`dag.test()`, neuron/airflow_runner.py) for two windows: a
   daily one ingesting the streams read by source time (vendor APIs, platform, door export),
   one ending after the device day landed for those read by receive time (MQTT, the relay's
   records) — two runs instead of 24 hourly ones, which keeps the batch under 3 minutes on
   2 cores; then one publish run, each feed to every consumer its policy grants.

Then (unless --no-serve, the path tests and benchmarks use) the hub runs for real under
`neuron up`: scheduler, DAG processor, API server, export API, collector and relay, with
the DAGs unpaused and the simulator going on in real time (devices, alarms, each day's
platform writes and door export), until Ctrl-C; and every peer protocol live beside them
(simulator/demo_peers.py): `neuron push` to the city brain's NGSI-LD broker, `neuron viid`
cascading passes to public security's upper VIID platform (which subscribes once the hub
answers), `neuron inbox` receiving the carriers' CTWing/OneNET pushes of the NB-IoT
detectors and manhole covers, whose alarms take the relay.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select

from kernel.errors import FatalError
from kernel.settings import Settings, load_settings
from neuron.airflow_runner import PROGRESS, Group, LaterGroup, plan_command
from simulator import demo_day
from simulator.demo_peers import DemoPeers

if TYPE_CHECKING:
    from simulator.live import LiveCommunity

MARKER = ".neuron-demo"
DEMO_CONSUMER = "district"
POLICE_CONSUMER = "public_security"
OPEN_DATA_CONSUMER = "open_data"
CONSUMERS = (DEMO_CONSUMER, POLICE_CONSUMER, OPEN_DATA_CONSUMER)
DEMO_ADMIN = "demo-admin"
# What each demo consumer pulls in "try next": the district an aggregate, the police the
# passes themselves (plates sealed to its encryption key), open data a k-anonymous count.
DEMO_PULLS = {
    DEMO_CONSUMER: "safety.alarms",
    POLICE_CONSUMER: "traffic.vehicle_passes",
    OPEN_DATA_CONSUMER: "traffic.vehicle_flow_hourly",
}


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


def _consumer_key(settings: Settings, home: Path, consumer: str) -> tuple[str, Path]:
    """A consumer's signing key (to pull with), kept under the demo folder."""
    from api.consumers import register_consumer

    private = Ed25519PrivateKey.generate()
    path = home / "consumer" / f"{consumer}.pem"
    _write_private(path, private)
    return register_consumer(settings, consumer, _public_pem(private)), path


def _demo_consumer_key(settings: Settings, home: Path) -> tuple[str, Path]:
    """The district's signing key (and open data's: each consumer pulls with its own)."""
    _consumer_key(settings, home, OPEN_DATA_CONSUMER)
    return _consumer_key(settings, home, DEMO_CONSUMER)


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


def _run_airflow(
    console: Console,
    home: Path,
    env: dict[str, str],
    groups: list[Group | LaterGroup],
    beside: Callable[[Progress], None] | None = None,
) -> dict[str, float]:
    """The plan through Airflow in a child process, with a progress bar per stage (`beside`
    is started with the progress display once Airflow is); returns the seconds each stage
    took (Airflow's start, ingest, publish)."""
    from schemas.feeds import load_feeds

    log_path = home / "logs" / "airflow.log"
    log_path.parent.mkdir(exist_ok=True)
    cmd = plan_command(home / "logs" / "plan.json", groups)
    runs = sum(len(g.dags) * (len(g.ends) if isinstance(g, Group) else 1) for g in groups)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with open(log_path, "w") as log, Progress(*columns, console=console) as progress:
        ingest = progress.add_task("Airflow: preparing metadata DB", total=runs)
        publish = progress.add_task("publish (every feed)", total=len(load_feeds()), start=False)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        if beside is not None:
            beside(progress)
        assert proc.stdout is not None
        failed: list[str] = []
        marks = {"start": time.monotonic()}
        for line in proc.stdout:
            if not line.startswith(PROGRESS):
                continue
            event = json.loads(line.removeprefix(PROGRESS))
            marks.setdefault(event["event"], time.monotonic())
            marks[f"last {event['event']}"] = time.monotonic()
            ok = event.get("state") in ("success", "DagRunState.SUCCESS")
            if event["event"] == "ready":
                progress.update(ingest, description="ingest (hub DAG, one window per stream group)")
            elif event["event"] == "wait":
                progress.update(ingest, description=f"waiting {event['seconds']} s for the window to end")
            elif event["event"] == "later":
                progress.update(ingest, description="ingest: waiting for the device day to land")
            elif event["event"] == "run":
                failed += [] if ok else [event["dag"]]
                progress.update(ingest, completed=event["done"], description=f"ingest: {event['dag']}")
            elif event["event"] == "publish":
                progress.start_task(publish)
                failed += [] if ok else [event["dag"]]
                progress.update(publish, advance=1, description=f"publish: {event['feed']}")
        if proc.wait() != 0:
            raise FatalError(f"DAG run(s) failed ({', '.join(failed) or 'see the log'}); see {log_path}")
    ready = marks.get("ready", marks["start"])
    ingested = marks.get("last run", ready)
    return {
        "airflow start": ready - marks["start"],
        "ingest DAGs": ingested - ready,
        "publish DAGs": marks.get("last publish", ingested) - ingested,
    }


def _summary(console: Console, settings: Settings) -> None:
    from warehouse.control import session_scope
    from warehouse.models import LoadRecord, Partition

    with session_scope(settings.control_url) as s:
        streams = s.execute(
            select(
                LoadRecord.stream,
                func.sum(LoadRecord.rows_extracted),
                func.sum(LoadRecord.rows_loaded),
                func.sum(LoadRecord.rows_quarantined),
            ).group_by(LoadRecord.stream)
        ).all()
        parts = s.execute(
            select(Partition.consumer, Partition.feed, func.count(), func.sum(Partition.rows)).group_by(
                Partition.consumer, Partition.feed
            )
        ).all()
    table = Table("stream", "extracted", "loaded", "quarantined (with reasons)")
    for stream, extracted, loaded, quarantined in streams:
        table.add_row(stream, str(extracted), str(loaded), str(quarantined))
    console.print(table)
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


def _start_simulator(home: Path, day: date | None, tz: str, tokens: dict[str, str]) -> LiveCommunity:
    """Every simulated system, its clock at now (or in the day after `day`), in real time."""
    from simulator.live import LiveCommunity, LiveOptions

    now = datetime.now(ZoneInfo(tz))
    start = now if day is None else datetime.combine(day + timedelta(days=1), now.time(), ZoneInfo(tz))
    options = LiveOptions(
        state=home / "simulator",
        parking_port=0,
        intercom_port=0,
        parking_token=tokens["parking"],
        intercom_token=tokens["intercom"],
        drop=home / "drops" / "door_access",
        truth=home / "simulator" / "truth.json",
        ngsi_ld_port=0,  # the city brain's NGSI-LD broker too (the district's push)
        start=start,
    )
    live = LiveCommunity(options, say=lambda _: None)
    live.start()
    return live


def _batch_day(
    console: Console, home: Path, settings: Settings, env: dict[str, str], live: LiveCommunity, day: date
) -> dict[str, float]:
    """The device day through the collector and the relay, while Airflow already runs the
    day streams; then the received streams' DAGs and every publish DAG. Returns the seconds
    each stage took."""
    from connectors.mqtt import landing_root

    hub_env = {**env, "NEURON_HOME": str(home)}
    logs = settings.state_path / "logs"
    tz = ZoneInfo(settings.timezone)
    later = LaterGroup(demo_day.received_streams(), home / "logs" / "received-group.json")
    stages: dict[str, float] = {}
    failed: list[BaseException] = []

    def device_day(progress: Progress) -> None:
        task = progress.add_task("devices: publishing the day (collector, relay running)", total=None)
        t = time.monotonic()
        try:
            sent = demo_day.publish_device_day(live, day)
            published = datetime.now(tz)
            if not demo_day.wait_landed(landing_root(settings), published + timedelta(seconds=3)):
                raise FatalError(f"the collector landed nothing in 2 minutes; see {logs / 'collect-batch-day.log'}")
            stages["device day"] = time.monotonic() - t
            progress.update(task, total=sent, completed=sent, description=f"devices: {day}'s messages landed")
            later.give(demo_day.received_group(demo_day.next_minute(datetime.now(tz)), settings.timezone))
        except BaseException as exc:
            failed.append(exc)
            later.give(Group(None, [], []))  # the runner must not wait for a group that never comes

    collector, relay = (demo_day.HubProcess(c, hub_env, logs) for c in ("collect", "relay"))
    threads: list[threading.Thread] = []

    def beside(progress: Progress) -> None:
        threads.append(threading.Thread(target=device_day, args=(progress,), name="device-day", daemon=True))
        threads[0].start()

    try:
        stages |= _run_airflow(console, home, env, [demo_day.day_group(day, settings.timezone), later], beside)
    finally:
        for thread in threads:
            thread.join()
        relay.stop()
        collector.stop()
    if failed:
        raise failed[0]
    return stages


def run_demo(
    console: Console,
    home: Path,
    day: date | None,
    serve_api: bool,
    port: int,
    airflow_port: int = 8080,
    console_port: int | None = None,
) -> None:
    """Run the demo; with `serve_api`, run the hub live until Ctrl-C."""
    from privacy.keys import init_keys
    from privacy.tls import ensure_certificate
    from warehouse.migrations import migrate

    started = time.monotonic()
    _fresh_home(home)
    tokens = {"parking": secrets.token_urlsafe(16), "intercom": secrets.token_urlsafe(16)}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NEURON_")},
        "NEURON_HOME": str(home),
        "NEURON_CONFIG": str(home / "hub.toml"),
        "NEURON_API__PORT": str(port),
        "AIRFLOW_HOME": str(home / "airflow"),
    }
    if console_port is not None:
        env["NEURON_API__CONSOLE_PORT"] = str(console_port)
    tz = load_settings(home=home).timezone
    if day is not None and day >= datetime.now(ZoneInfo(tz)).date():
        raise FatalError(f"--day {day} has not ended yet: choose a day before today")
    live = _start_simulator(home, day, tz, tokens)
    try:
        day = day or live.clock.start.date() - timedelta(days=1)
        community = live.sites[0].community.community_id
        with demo_day.upstream_brokers(home, "putuo", community) as upstreams, DemoPeers(home) as peers:
            demo_day.write_hub_toml(home / "hub.toml", live, upstreams, tokens, peers)
            env |= peers.env()  # the cascade's Digest password: never in the file
            os.environ.update({k: v for k, v in env.items() if k.startswith("NEURON_")})
            settings = load_settings(home=home)
            if serve_api:
                # Before any work: a taken port is said now, in one line, not after the batch day.
                from neuron.up import Service, check_ports

                check_ports(
                    [
                        Service("export-api", [], listens=[(settings.api.host, settings.api.port)]),
                        Service("console", [], listens=[(settings.api.console_host, settings.api.console_port)]),
                        Service("api-server", [], listens=[("127.0.0.1", airflow_port)]),
                    ]
                )
            console.rule(f"Neuron Hub demo — {settings.community_name} ({settings.community_id}), {day}")
            for system, url in live.urls.items():
                console.print(f"simulated {system:>8}: {url}", soft_wrap=True, highlight=False)
            console.print(f"hub state in {settings.state_path}; its config {home / 'hub.toml'}")
            init_keys(settings)
            ensure_certificate(settings)  # HTTPS out of the box (issue 17)
            migrate(settings.control_url)
            _demo_consumer_key(settings, home)
            sealed_to = _public_security_keys(settings, home)
            admin_password = _demo_admin(settings)
            console.print(f"public security's encryption key {sealed_to}: plates and in-home devices sealed to it")
            peers.open_plates_with(home / "consumer" / f"{POLICE_CONSUMER}.x25519.pem")
            carrier_devices = peers.register_devices(settings)
            console.print(f"{carrier_devices} carrier NB-IoT devices registered with the inbox (encrypted)")
            stages = {"hub and simulator setup": time.monotonic() - started}
            stages |= _batch_day(console, home, settings, env, live, day)
            live.write_truth()
            _summary(console, settings)
            for up in upstreams.values():
                console.print(f"{up.name}'s broker received {up.watcher.count} alarm messages ({up.watcher.path})")
            console.print(f"batch day done in {time.monotonic() - started:.0f} s")
            stage_times = ", ".join(f"{name} {secs:.0f} s" for name, secs in stages.items())
            console.print(f"stages: {stage_times}", soft_wrap=True, highlight=False)
            if serve_api:
                _try_next(
                    console, settings, settings.api.port, airflow_port, home, admin_password, upstreams, live, peers
                )
                peers.feed()  # the upper subscribes, the carriers push, once `neuron up` runs viid and inbox
                _run_up(settings, env, airflow_port)
                console.print(f"public security's VIID platform acknowledged {peers.acks.count} notifications")
    finally:
        live.close()  # the truth a last time: what the live hours added


def _ballot_example(live: LiveCommunity) -> dict[str, Any] | None:
    """One real ballot of the simulated day: its receipt (the voter's secret), choice and area."""
    votes = live.sites[0].platform.tables.get("votes", {})
    for ballot in votes.values():
        if ballot.get("_receipt"):
            return ballot
    return None


def _try_next(
    console: Console,
    settings: Settings,
    port: int,
    airflow_port: int,
    home: Path,
    admin_password: str,
    upstreams: dict[str, Any] | None = None,
    live: LiveCommunity | None = None,
    peers: DemoPeers | None = None,
) -> None:
    from privacy.keys import HubKeys
    from privacy.tls import hub_certificate, jwks_fingerprint

    hub = f"https://{settings.api.host}:{port}"
    ca = hub_certificate(settings).certfile
    pin = jwks_fingerprint(HubKeys.load(settings).jwks())
    console.rule("Try next (in another terminal)")
    lines = []
    for consumer, feed in DEMO_PULLS.items():
        key_id = _key_id_of(settings, consumer)
        lines.append(
            f"# as {consumer}:\n"
            f".venv/bin/neuron pull {feed} --hub {hub} \\\n"
            f"    --key-id {key_id} --private-key {home / 'consumer' / f'{consumer}.pem'} "
            f"--out {home / 'pulled' / consumer} \\\n    --ca {ca} --jwks-fingerprint {pin}"
        )
    for up in (upstreams or {}).values():
        lines.append(
            f"# {up.name}'s alarms arriving at its broker (signed JWS; all kept in {up.watcher.path}):\n"
            f"mosquitto_sub -h {up.broker.host} -p {up.broker.port} -t '{up.topic}' -v"
        )
    if live is not None and live.ngsi_ld_url:
        lines.append(
            f"curl -s '{live.ngsi_ld_url}/ngsi-ld/v1/entities?type=Alert'   # the district's alarms in the city"
            " brain's NGSI-LD broker (`neuron push`)"
        )
    if peers is not None:
        lines += peers.try_next_lines()
    lines += [
        f"curl -s --cacert {ca} {hub}/.well-known/jwks.json     # the hub's public keys",
        f"curl -si --cacert {ca} {hub}/v1/feeds                 # unsigned: 401, and the refusal is audited",
        f"Admin console: https://{settings.api.console_host}:{settings.api.console_port}/admin (its own listener)"
        f"   account {DEMO_ADMIN}, password {admin_password}  (printed once)",
        f"  more accounts: NEURON_HOME={home} NEURON_CONFIG={home / 'hub.toml'} .venv/bin/neuron admins add NAME"
        " --role admin|auditor",
    ]
    ballot = _ballot_example(live) if live is not None else None
    receipt = ballot["_receipt"] if ballot else "RECEIPT"
    choice, area = (ballot["choice"], ballot["area_m2"]) if ballot else ("agree", 89.5)
    lines += [
        "A ballot of the simulated day (the voter's receipt, from the vote page), proven to count as cast:",
        f"  signed GET {hub}/v1/feeds/governance.votes/proof?receipt={receipt} > proof.json"
        "   (as the district: its key above)",
        f"  .venv/bin/neuron verify-ballot proof.json --receipt {receipt} --choice {choice} --area {area} \\\n"
        "      --root MERKLE_ROOT   # the motion's merkle_root in the district's pulled governance.votes",
        f"Airflow UI: http://127.0.0.1:{airflow_port}        # the DAG suite, unpaused, running on schedule",
    ]
    console.print("\n".join(lines), soft_wrap=True, highlight=False)
    console.print(f"starting the hub (`neuron up`) with the export API on {hub} — Ctrl-C to stop")


def _key_id_of(settings: Settings, consumer: str) -> str:
    from api.consumers import list_consumers

    return next(k.key_id for c in list_consumers(settings) if c.name == consumer for k in c.keys)


def _run_up(settings: Settings, env: dict[str, str], airflow_port: int = 8080) -> None:
    """The hub for real: `neuron up` with every service (the collector and the relay too),
    every stream's DAG on its own schedule, the simulator going on in real time."""
    from neuron.up import AirflowPorts, free_port, run_up

    os.environ.update({"AIRFLOW_HOME": env["AIRFLOW_HOME"]} | {k: v for k, v in env.items() if k.startswith("NEURON_")})
    os.environ.pop("NEURON_DAG_STREAMS", None)
    os.environ.pop("NEURON_DAG_CADENCE", None)
    ports = AirflowPorts(api=airflow_port, scheduler_health=free_port(), log_server=free_port())
    # The batch day made the DAGs paused: the live hub must run them on schedule.
    run_up(settings, collect=True, ports=ports, relay=True, unpause=True)
