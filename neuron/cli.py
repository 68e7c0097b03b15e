"""The `neuron` command line. Heavy imports (Airflow, GX, FastAPI) happen inside the
commands that need them, so `neuron --help` answers at once."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from district.cli import app as district_app
from kernel.errors import ConfigError, FatalError, NeuronError, NotInitialised
from kernel.logging import setup_logging
from kernel.private import restrict_process
from kernel.settings import Settings, load_settings
from neuron.inbox_cli import inbox_app
from neuron.push_cli import push_app
from neuron.scrub_cli import scrub
from neuron.user_errors import user_error
from neuron.viid_cli import register as register_viid

app = typer.Typer(
    help="Neuron Hub: community smart systems → de-identified, signed feeds for the city brain.", no_args_is_help=True
)
consumers_app = typer.Typer(help="Consumers of the export API and their keys.", no_args_is_help=True)
keys_app = typer.Typer(help="The hub's signing keys and master secret.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log of everything shared.", no_args_is_help=True)
admins_app = typer.Typer(help="People who may sign in to the admin console (/admin).", no_args_is_help=True)
retention_app = typer.Typer(help="Retention of every raw copy and the quarantine.", no_args_is_help=True)
app.add_typer(consumers_app, name="consumers")
app.add_typer(keys_app, name="keys")
app.add_typer(retention_app, name="retention")
app.add_typer(audit_app, name="audit")
app.add_typer(admins_app, name="admins")
register_viid(app)  # `neuron viid`: the GA/T 1400 cascade
app.add_typer(push_app, name="push")  # NGSI-LD pushes (neuron/push_cli.py)
app.add_typer(inbox_app, name="inbox")
app.command()(scrub)
app.add_typer(district_app, name="district")  # the district office's application (district/cli.py)
console = Console()


def _settings() -> Settings:
    restrict_process()  # whatever the hub writes (databases, lake, logs, exports) is its user's only
    setup_logging()
    return load_settings()


def _hub() -> Settings:
    """The settings of a hub that `neuron init` has made (a clear error otherwise)."""
    from neuron.housekeeping import ensure_initialised

    settings = _settings()
    ensure_initialised(settings)
    return settings


def _known_feeds(names: list[str] | None) -> None:
    """Refuse feed names the hub does not define, naming those it does."""
    from schemas.feeds import load_feeds

    known = set(load_feeds())
    unknown = sorted(set(names or []) - known)
    if unknown:
        raise typer.BadParameter(f"unknown feed(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")


def _port_free(host: str, port: int) -> None:
    """Refuse to start a server on an address something else already holds."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise FatalError(
                f"{host}:{port} is taken ({exc.strerror}): stop what listens there or use --port"
            ) from None


def _known_stream(name: str) -> None:
    from connectors.registry import STREAMS

    if name not in STREAMS:
        raise typer.BadParameter(f"unknown stream {name!r}; known: {', '.join(sorted(STREAMS))}")


def _day(value: str | None) -> str | None:
    """A --day option: a calendar day as YYYY-MM-DD."""
    if value is not None:
        try:
            date.fromisoformat(value)
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not a day: write it as YYYY-MM-DD, e.g. 2026-11-20") from None
    return value


def _fail(exc: NeuronError) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(str(exc))}")  # escaped: "[viid]" is a section, not markup
    return typer.Exit(code=1)


def _friendly(callback: Callable[..., Any]) -> Callable[..., Any]:
    """A command that turns the hub's own errors into one line and exit code 1 (never a traceback)."""

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except NeuronError as exc:
            raise _fail(exc) from exc
        except (OSError, SQLAlchemyError, ValidationError) as exc:
            raise _fail(user_error(exc)) from exc

    return run


@app.command()
def init() -> None:
    """Create the hub's state: master secret, signing key, control database."""
    from privacy.keys import init_keys
    from privacy.tls import ensure_certificate, hub_certificate
    from warehouse.migrations import migrate

    settings = _settings()
    made_master, made_signing = init_keys(settings)
    made_certificate = ensure_certificate(settings) if settings.api.tls else False
    migrate(settings.control_url)
    console.print(f"state folder   {settings.state_path}")
    console.print(f"master secret  {'created' if made_master else 'kept (already there)'}")
    console.print(f"signing key    {'created' if made_signing else 'kept (already there)'}")
    if settings.api.tls:
        certificate = hub_certificate(settings)
        state = "created" if made_certificate else "kept (already there)"
        console.print(f"TLS cert       {state}: {certificate.certfile} (sha256 {certificate.fingerprint()})")
    console.print("control DB     migrated to the latest version")


@app.command()
def ingest(
    source: Annotated[str, typer.Argument(help="Stream name, e.g. vehicle_passes.")],
    day: Annotated[str | None, typer.Option(help="A local day (YYYY-MM-DD) to ingest whole.", callback=_day)] = None,
) -> None:
    """Run one stream through every stage: by default from its cursor to the last full hour."""
    import pipeline

    settings = _hub()
    _known_stream(source)
    if day:
        start, end = pipeline.local_day_window(settings, date.fromisoformat(day))
    else:
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        start = pipeline.cursor_value(settings, source) or end - timedelta(hours=1)
    summary = pipeline.run_window(settings, source, start, end)
    summary.pop("expectations", None)
    console.print_json(json.dumps(summary, ensure_ascii=False, default=str))


@app.command()
def collect() -> None:
    """Run the MQTT collector until Ctrl-C: device messages landed durably, then acknowledged."""
    from connectors.collector_run import run_collector

    settings = _hub()
    stats = run_collector(settings)
    console.print(f"collector stopped: {stats}")


@app.command()
def relay() -> None:
    """Run the real-time alarm relay until Ctrl-C/SIGTERM: community alarms → district and police brokers."""
    from relay.run import run_relay

    settings = _hub()
    stats = run_relay(settings)
    console.print(f"relay stopped: {stats}")


@app.command()
def publish(feed: Annotated[list[str] | None, typer.Option(help="Feed(s); default: all.")] = None) -> None:
    """Rebuild the marts and publish feeds to every consumer their policies grant."""
    import pipeline

    settings = _hub()
    _known_feeds(feed)
    pipeline.build(settings)
    written = pipeline.publish(settings, feeds=feed)
    console.print(f"{len(written)} new partition version(s) published")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: api.host from the config.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: api.port from the config.")] = None,
) -> None:
    """Serve the export API (reads only published partitions and the control DB)."""
    from api.app import serve as serve_api

    settings = _hub()
    if host or port:
        settings = settings.model_copy(
            update={
                "api": settings.api.model_copy(
                    update={"host": host or settings.api.host, "port": port or settings.api.port}
                )
            }
        )
    _port_free(settings.api.host, settings.api.port)
    serve_api(settings)


@app.command()
def up(
    collect_mqtt: Annotated[bool, typer.Option("--collect/--no-collect", help="Run the MQTT collector.")] = True,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve", help="Run the export API and console.")] = True,
    airflow_port: Annotated[int, typer.Option(help="Port of Airflow's API server and UI.")] = 8080,
    celery_workers: Annotated[int, typer.Option(help="Celery workers to run here (CeleryExecutor).")] = 0,
    relay: Annotated[bool, typer.Option("--relay/--no-relay", help="Run the alarm relay, if configured.")] = True,
    airflow: Annotated[
        bool, typer.Option("--airflow/--no-airflow", help="Run Airflow here (not where another machine runs it).")
    ] = True,
    unpause: Annotated[
        bool,
        typer.Option(
            "--unpause/--paused",
            help="Unpause every DAG at start (new DAGs start unpaused anyway); --paused keeps paused ones paused.",
        ),
    ] = False,
) -> None:
    """Run the hub on this machine: Airflow (scheduler, DAG processor, API server), the export
    API, the MQTT collector and the relay, supervised as one process group until Ctrl-C."""
    from neuron.up import AirflowPorts, free_port, run_up

    ports = AirflowPorts(api=airflow_port, scheduler_health=free_port(), log_server=free_port())
    run_up(
        _settings(),
        collect_mqtt,
        serve_api,
        ports,
        workers=celery_workers,
        relay=relay,
        airflow=airflow,
        unpause=unpause,
    )


@consumers_app.command("add")
def consumers_add(
    name: str,
    public_key: Annotated[Path, typer.Option(help="The consumer's Ed25519 public key (PEM).")],
    policy: Annotated[str | None, typer.Option(help="Policy name; default: the consumer's name.")] = None,
    encryption_key: Annotated[
        Path | None, typer.Option(help="The consumer's X25519 public key (PEM), for fields sealed to it.")
    ] = None,
) -> None:
    """Register a consumer (or a further key of one) for signed requests and sealed fields."""
    from api.consumers import register_consumer
    from warehouse.audit import record_event
    from warehouse.recipients import register_encryption_key

    settings = _hub()
    key_id = register_consumer(settings, name, public_key.read_bytes(), policy)
    record_event(
        settings.control_url, actor="cli", action="key_registered", detail={"consumer": name, "key_id": key_id}
    )
    if encryption_key is not None:
        enc_id = register_encryption_key(settings, name, encryption_key.read_bytes())
        console.print(f"consumer {name}: encryption key [bold]{enc_id}[/bold]")
    console.print(f"consumer {name}: key id [bold]{key_id}[/bold]")


@consumers_app.command("list")
def consumers_list() -> None:
    """List consumers, their policies and keys."""
    from api.consumers import list_consumers

    table = Table("consumer", "policy", "keys", "revoked")
    for c in list_consumers(_hub()):
        keys = ", ".join(k.key_id + (" (revoked)" if k.revoked_at else "") for k in c.keys)
        table.add_row(c.name, c.policy, keys, str(c.revoked_at or ""))
    console.print(table)


@consumers_app.command("receipt")
def consumers_receipt(
    receipt: Annotated[Path, typer.Argument(help="The district's receipt (compact JWS, `neuron district receipt`).")],
    district_jwks: Annotated[Path, typer.Option(help="The district's receipts JWKS (`neuron district keys`).")],
    consumer: Annotated[str, typer.Option(help="The consumer the district is registered as here.")] = "district",
) -> None:
    """Check a district's signed receipt against what this hub published for it."""
    from api.district_receipts import check_receipt

    try:
        jwks = json.loads(district_jwks.read_text())
    except ValueError:
        raise ConfigError(f"{district_jwks} is not a JWKS (JSON); take it from `neuron district keys`") from None
    settings = _hub()
    token = receipt.read_text().strip()
    found = check_receipt(settings, token, jwks, consumer)
    # Verified: kept for the console's receipts page, which verifies it again on every view.
    from api.admin.releases import keep_receipt

    keep_receipt(settings, consumer, token, jwks)
    console.print(f"{found.district} (receipt of {found.issued_at}): holds {found.held} newest version(s)")
    for line in found.behind:
        console.print(f"  not yet held: {line}", soft_wrap=True)
    for line in found.mismatched:
        console.print(f"  [red]held with other bytes:[/red] {line}", soft_wrap=True)


@consumers_app.command("revoke")
def consumers_revoke(
    name: str, key_id: Annotated[str | None, typer.Option(help="Revoke only this key.")] = None
) -> None:
    """Revoke a consumer (or one of its keys), effective at once."""
    from api.consumers import revoke_consumer, revoke_key
    from warehouse.audit import record_event

    settings = _hub()
    revoke_key(settings, key_id) if key_id else revoke_consumer(settings, name)
    detail = {"consumer": name, **({"key_id": key_id} if key_id else {})}
    record_event(
        settings.control_url, actor="cli", action="key_revoked" if key_id else "consumer_revoked", detail=detail
    )
    console.print(f"revoked {key_id or name}")


@keys_app.command("show")
def keys_show() -> None:
    """Print the hub's public JWKS, signing-key periods and master-secret versions (never a secret)."""
    from neuron.housekeeping import keys_show as show

    console.print_json(json.dumps(show(_settings()), ensure_ascii=False, default=str))


@keys_app.command("rotate")
def keys_rotate(
    master_secret: Annotated[
        bool, typer.Option("--master-secret", help="Also start a new master-secret version.")
    ] = False,
) -> None:
    """Start a new signing key and re-sign every manifest with it (the old key stays in the JWKS a while)."""
    from neuron.housekeeping import keys_rotate as rotate

    console.print_json(json.dumps(rotate(_hub(), master_secret), ensure_ascii=False, default=str))


@keys_app.command("resign")
def keys_resign() -> None:
    """Re-sign every partition manifest with the active signing key (rotation does it too)."""
    from neuron.housekeeping import keys_resign as resign

    console.print_json(json.dumps(resign(_hub()), ensure_ascii=False, default=str))


@retention_app.command("run")
def retention_run() -> None:
    """Purge raw copies and quarantine rows past their retention (docs/privacy-lifecycle.md); each purge is audited."""
    from neuron.housekeeping import retention_run as run

    console.print_json(json.dumps(run(_hub()), ensure_ascii=False, default=str))


@audit_app.command("verify")
def audit_verify(
    archive: Annotated[Path | None, typer.Option(help="Verify an exported archive instead of the live log.")] = None,
    jwks: Annotated[Path | None, typer.Option(help="With --archive: the hub's JWKS to trust (pinned).")] = None,
) -> None:
    """Recompute the hash chain; name every edited, deleted or reordered entry."""
    from api.audit_export import verify_archive, verify_audit

    if archive is not None:
        pinned = json.loads(jwks.read_text()) if jwks else None
        report = verify_archive(archive, pinned)
    else:
        from warehouse.lake import lake_problems

        settings = _hub()
        report = verify_audit(settings)
        # The lake too: every file in it has its publication record and audit entry (issue 17, D5).
        report.problems.extend(lake_problems(settings))
    if report.ok:
        console.print(f"[green]audit log intact[/green]: {report.entries} entries, last seq {report.last_seq}")
        if archive is None:
            console.print("[green]lake consistent[/green]: every file has its record and audit entry")
        return
    for problem in report.problems:
        console.print(f"[red]✗[/red] {problem}")
    raise typer.Exit(code=1)


@audit_app.command("export")
def audit_export(path: Path) -> None:
    """Write a signed archive of the audit log that anyone can verify offline."""
    from api.audit_export import export_audit

    info = export_audit(_hub(), path)
    console.print(
        f"signed audit archive written to {path}: {info.entries} entries (seq {info.first_seq}–{info.last_seq}), "
        f"chain head {info.last_hash[:16]}…",
        soft_wrap=True,
    )


@app.command()
def dictionary(
    out: Annotated[Path | None, typer.Option(help="Write the Markdown here instead of printing it.")] = None,
    feeds: Annotated[
        bool, typer.Option("--feeds", help="What each consumer receives of each feed, instead of the sources.")
    ] = False,
) -> None:
    """Render the data dictionary: every stream's contract, or (--feeds) every feed as each consumer receives it."""
    from schemas.dictionary import all_contracts, render_dictionary

    if feeds:
        from privacy.feed_dictionary import render_feeds
        from privacy.policy import load_policies
        from schemas.feeds import load_feeds

        try:
            text = render_feeds(load_feeds(), load_policies(_settings().policies_dir))
        except NeuronError as exc:
            raise _fail(exc) from exc
    else:
        text = render_dictionary(all_contracts())
    if out:
        out.write_text(text, encoding="utf-8")
        console.print(f"data dictionary written to {out}")
    else:
        print(text)


@app.command()
def quality(
    out: Annotated[Path | None, typer.Option(help="Write quality.json and quality.html here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Data quality per stream and feed: rows in, quarantined by reason, expectations failed, freshness."""
    from warehouse.quality import quality_report, write_report

    settings = _hub()
    if out is not None:
        paths = write_report(settings, out)
        report = json.loads(paths[0].read_text(encoding="utf-8"))
    else:
        report = quality_report(settings)
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return
    streams = Table(
        "status", "rows in", "loaded", "quarantined", "freshness", title=f"streams ({report['period']['label']})"
    )
    streams.add_column("stream", no_wrap=True)
    for row in report["streams"]:
        counts = (str(row[k]) for k in ("rows_in", "rows_loaded", "rows_quarantined"))
        streams.add_row(row["status"], *counts, _age(row["freshness_seconds"]), row["stream"])
    feeds = Table("status", "freshness", title="feeds")
    feeds.add_column("feed", no_wrap=True)
    for row in report["feeds"]:
        feeds.add_row(row["status"], _age(row["freshness_seconds"]), row["feed"])
    console.print(streams, feeds)
    if out is not None:
        console.print(f"report written to {out / 'quality.html'} and {out / 'quality.json'}", soft_wrap=True)


@app.command()
def status(
    day: Annotated[
        str | None, typer.Option(help="A past local day (YYYY-MM-DD): its counts as of its end; default today.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Today's counts and each stream's and feed's state (ok, warn, not yet connected, stale, failing),
    over the period every view states: the same numbers as the console and the consumers' catalog."""
    from warehouse.quality import quality_report

    settings = _hub()
    now = datetime.now(UTC)
    if _day(day) is not None:
        from zoneinfo import ZoneInfo

        end = datetime.combine(date.fromisoformat(str(day)) + timedelta(days=1), datetime.min.time())
        now = min(now, end.replace(tzinfo=ZoneInfo(settings.timezone)))  # 24:00 local closes the day
    report = quality_report(settings, now)
    counts = {
        "period": report["period"]["label"],
        "totals": report["summary"]["totals"],
        "streams": report["summary"]["streams"],
        "feeds": report["summary"]["feeds"],
        "by_stream": {row["stream"]: row["status"] for row in report["streams"]},
        "by_feed": {row["feed"]: row["status"] for row in report["feeds"]},
    }
    if as_json:
        print(json.dumps(counts, ensure_ascii=False, indent=2))
        return
    totals = counts["totals"]
    console.print(f"period: {counts['period']}", soft_wrap=True)
    console.print(
        f"rows in {totals['rows_in']}, loaded {totals['rows_loaded']}, quarantined {totals['rows_quarantined']}"
    )
    for kind in ("streams", "feeds"):
        states = ", ".join(f"{STATE_WORDS[s]} {n}" for s, n in counts[kind].items())
        console.print(f"{kind}: {states}")
    for kind, listed in (("stream", counts["by_stream"]), ("feed", counts["by_feed"])):
        for name, state in listed.items():
            if state != "ok":
                console.print(f"  {kind} {name}: {STATE_WORDS[state]}", soft_wrap=True)


STATE_WORDS = {"ok": "ok", "warn": "warning", "not_connected": "not yet connected", "stale": "stale", "fail": "failing"}


def _age(seconds: int | None) -> str:
    from warehouse.quality import duration_text

    return "never loaded" if seconds is None else duration_text(seconds)[0]


@app.command()
def pull(
    feed: str,
    hub: Annotated[str, typer.Option(help="The hub's base URL.")] = "https://127.0.0.1:8700",
    key_id: Annotated[str, typer.Option(help="Your key id, as `neuron consumers add` printed it.")] = "",
    private_key: Annotated[Path, typer.Option(help="Your Ed25519 private key (PEM).")] = Path("consumer.pem"),
    out: Annotated[Path, typer.Option(help="Where the Parquet files and the cursor are kept.")] = Path("pulled"),
    jwks: Annotated[Path | None, typer.Option(help="The hub's JWKS, pinned.")] = None,
    jwks_fingerprint: Annotated[
        str | None, typer.Option(help="Or the JWKS fingerprint `neuron keys show` printed (sha256:...).")
    ] = None,
    ca: Annotated[
        Path | None, typer.Option(help="The hub's TLS certificate (its hub.crt); default: the system's CAs.")
    ] = None,
) -> None:
    """Pull a feed incrementally: every response and manifest verified, rows written as Parquet."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from api.client import HubClient
    from api.pull import pull_feed

    setup_logging()
    if not hub.startswith(("http://", "https://")):
        raise typer.BadParameter(
            f"{hub!r} is not a URL: write it with its scheme, e.g. https://{hub}", param_hint="--hub"
        )
    try:
        key = load_pem_private_key(private_key.read_bytes(), password=None)
    except ValueError:
        raise typer.BadParameter("not a PEM private key (unencrypted PKCS#8)", param_hint="--private-key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise typer.BadParameter("the private key must be Ed25519", param_hint="--private-key")
    try:
        pinned = json.loads(jwks.read_text()) if jwks else None
    except ValueError:
        raise typer.BadParameter("not a JSON Web Key Set", param_hint="--jwks") from None
    if pinned is None and not jwks_fingerprint:
        raise typer.BadParameter(
            "pin the hub's keys: --jwks FILE or --jwks-fingerprint sha256:...", param_hint="--jwks"
        )
    with HubClient(hub, key_id, key, pinned, jwks_fingerprint=jwks_fingerprint, ca=ca) as client:
        result = pull_feed(client, feed, out)
    console.print(
        f"{feed}: {len(result.partitions)} partition version(s), {result.rows} rows verified and written under {out}",
        soft_wrap=True,
    )


@app.command("verify-ballot")
def verify_ballot(
    proof: Annotated[Path, typer.Argument(help="The proof JSON (GET /v1/feeds/governance.votes/proof).")],
    receipt: Annotated[str, typer.Option(help="Your ballot receipt, as the vote page showed it.")],
    choice: Annotated[str, typer.Option(help="Your choice: agree, oppose or abstain.")],
    area: Annotated[float, typer.Option(help="Your floor area counted for the vote (m²).")],
    root: Annotated[str | None, typer.Option(help="The motion's merkle_root from the published feed.")] = None,
) -> None:
    """Check offline that your ballot counted as cast: a leaf under the motion's published root (docs/votes.md)."""
    from warehouse.merkle import verify_ballot as check

    try:
        answer = json.loads(proof.read_text(encoding="utf-8"))
    except ValueError:
        raise typer.BadParameter(
            "not a ballot proof (JSON from /v1/feeds/governance.votes/proof)", param_hint="proof"
        ) from None
    if not check(answer, receipt, choice, area, root):
        console.print("[red]NOT VERIFIED[/red]: this proof does not show that ballot under that root")
        raise typer.Exit(code=1)
    console.print(f"verified: your ballot on {answer['motion_id']} is under root {answer['merkle_root']}")


@app.command()
def bench(names: Annotated[list[str] | None, typer.Argument(help="Benchmarks to run; default all.")] = None) -> None:
    """Run the benchmarks (each against an in-run baseline) and update bench/RESULTS.md."""
    import subprocess
    import sys

    from kernel.settings import REPO_ROOT

    raise typer.Exit(subprocess.run([sys.executable, "-m", "bench", *(names or [])], cwd=REPO_ROOT).returncode)


@admins_app.command("add")
def admins_add(
    name: str,
    role: Annotated[str, typer.Option(help="admin (manages consumers and policies) or auditor (reads).")] = "auditor",
) -> None:
    """Add a console account; the password is prompted for (never an argument: shells keep history)."""
    from api.admin.accounts import add_admin
    from warehouse.audit import record_event

    settings = _hub()
    password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    add_admin(settings.control_url, name, role, password)
    record_event(settings.control_url, actor="cli", action="admin_added", detail={"account": name, "role": role})
    console.print(f"admin {name} ({role}) added")


@admins_app.command("list")
def admins_list() -> None:
    """List console accounts, their roles, and which are disabled or locked."""
    from api.admin.accounts import list_admins

    table = Table("name", "role", "created", "disabled", "locked until")
    for a in list_admins(_hub().control_url):
        table.add_row(a.name, a.role, str(a.created_at), str(a.disabled_at or ""), str(a.locked_until or ""))
    console.print(table)


@admins_app.command("disable")
def admins_disable(name: str) -> None:
    """Disable a console account and end its sessions at once."""
    from api.admin.accounts import disable_admin
    from warehouse.audit import record_event

    settings = _hub()
    disable_admin(settings.control_url, name)
    record_event(settings.control_url, actor="cli", action="admin_disabled", detail={"account": name})
    console.print(f"admin {name} disabled")


def _load_plugins() -> None:
    """Commands other distributions add (the simulator's `simulate` and `demo`): the product
    never imports them; they register themselves under the `neuron.commands` entry points."""
    for entry in entry_points(group="neuron.commands"):
        try:
            command = entry.load()
        except ImportError as exc:
            missing = exc.name or "a dependency"
            command = _unavailable(entry.name, missing)
        app.command(entry.name)(command)


def _unavailable(name: str, missing: str) -> Callable[[], None]:
    def command() -> None:
        raise NotInitialised(
            f"`neuron {name}` needs the simulator ({missing} is not installed): pip install 'neuron-hub[simulator]'"
        )

    command.__doc__ = f"(not installed) the simulator's `{name}` command"
    return command


def _errors_in_one_place(typer_app: typer.Typer | None = None) -> None:
    """Wrap every command, sub-commands included, in `_friendly`."""
    typer_app = typer_app or app
    for info in typer_app.registered_commands:
        if info.callback is not None:
            info.callback = _friendly(info.callback)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _errors_in_one_place(group.typer_instance)


_load_plugins()
_errors_in_one_place()


if __name__ == "__main__":  # after the plugins registered (`python -m neuron.cli demo`)
    app()
