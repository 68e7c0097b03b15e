"""`neuron district …`: the district data office's commands (a typer sub-app; neuron/cli.py
registers it). Heavy imports (pyiceberg, DuckDB) happen inside the commands."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from district.config import DistrictSettings, load_district_settings
from kernel.errors import NeuronError

app = typer.Typer(
    help="The district's lake: every hub's feeds, verified, in Iceberg tables exactly once; queries across "
    "communities.",
    no_args_is_help=True,
)
console = Console()
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="The district's TOML file (default: $NEURON_DISTRICT_CONFIG).")
]


@contextmanager
def _district(config: Path | None) -> Iterator[DistrictSettings]:
    """The settings, with user errors (config, verification, missing keys) as one line."""
    from pydantic import ValidationError

    from kernel.logging import setup_logging

    setup_logging()
    if config is not None:
        os.environ["NEURON_DISTRICT_CONFIG"] = str(config)
    try:
        settings = load_district_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        console.print(f"[red]error:[/red] the district's config: {where}: {first['msg']}", soft_wrap=True)
        raise typer.Exit(code=1) from None
    try:
        yield settings
    except NeuronError as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(code=1) from None


@app.command()
def init(config: ConfigOption = None) -> None:
    """Create the district's keys (request signing, receipts) and its catalog."""
    from district.keys import init_keys, key_id, load_key, public_pem
    from district.lake import Lake

    with _district(config) as settings:
        created = init_keys(settings)
        Lake(settings)
        for path in created:
            console.print(f"created {path}")
        key = load_key(settings.resolve(settings.key_file))
        console.print(f"catalog    {settings.catalog_url.split('@')[-1]}")
        console.print(f"warehouse  {settings.warehouse_location}")
        console.print(f"key id at each hub: {key_id('district', key)}  (register the public key below)")
        console.print(public_pem(key).decode(), end="")


@app.command()
def keys(config: ConfigOption = None) -> None:
    """The district's public request key (for `neuron consumers add` at each hub) and its receipts JWKS."""
    from district.keys import load_key, public_pem, receipts_jwks

    with _district(config) as settings:
        console.print(public_pem(load_key(settings.resolve(settings.key_file))).decode(), end="")
        console.print_json(json.dumps(receipts_jwks(settings)))


@app.command()
def hubs(config: ConfigOption = None) -> None:
    """The hubs in the config and where each one's cursors stand."""
    from district.ingest import CursorStore

    with _district(config) as settings:
        cursors = CursorStore(settings.home_path / "state" / "cursors.json")
        table = Table("community", "subdistrict", "url", "pinned", "feeds pulled")
        for hub in settings.hubs:
            pinned = str(hub.jwks_file) if hub.jwks_file else (hub.jwks_fingerprint or "")[:19] + "…"
            table.add_row(
                hub.community_id, hub.subdistrict, hub.url, pinned, str(len(cursors.cursors.get(hub.community_id, {})))
            )
        console.print(table)


@app.command()
def gather(
    hub: Annotated[list[str] | None, typer.Option(help="Only these hubs (community ids); repeatable.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The run's report as JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Pull every granted feed of every hub, verified, into the Iceberg tables exactly once; write receipts.

    Exits 2 when a partition was refused or a hub was unavailable (the rest is committed)."""
    from district.ingest import gather as run
    from district.lake import Lake
    from district.receipts import write_receipts

    with _district(config) as settings:
        lake = Lake(settings)
        report = run(settings, hubs=hub, lake=lake)
        write_receipts(settings, lake, hub)
        if as_json:
            print(json.dumps(report.to_json(), ensure_ascii=False))
        else:
            console.print(
                f"run {report.run}: {report.hubs} hub(s), {report.committed} partition version(s) committed "
                f"({report.replaced} superseding, {report.rows} rows) in {report.commits} commit(s); "
                f"{report.already_held} already held",
                soft_wrap=True,
            )
            for refusal in report.refusals:
                console.print(
                    f"[red]refused[/red] {refusal.hub} {refusal.feed} {refusal.partition}: {refusal.reason}",
                    soft_wrap=True,
                )
            for name, reason in sorted(report.unavailable.items()):
                console.print(f"[yellow]unavailable[/yellow] {name}: {reason}", soft_wrap=True)
            for feed, reason in sorted(report.failed_commits.items()):
                console.print(f"[red]not committed[/red] {feed}: {reason}", soft_wrap=True)
        if report.refusals or report.unavailable or report.failed_commits:
            raise typer.Exit(code=2)


@app.command()
def query(
    name: Annotated[
        str | None, typer.Argument(help="air_quality_by_hour, alarm_response_by_subdistrict, holdings")
    ] = None,
    sql: Annotated[str | None, typer.Option(help="Your own SQL over the tables and `communities` instead.")] = None,
    engine: Annotated[
        str, typer.Option(help="arrow (pyiceberg scan), files (DuckDB reads the data files), iceberg.")
    ] = "arrow",
    limit: Annotated[int, typer.Option(help="Rows shown at most.")] = 50,
    csv: Annotated[Path | None, typer.Option(help="Write the whole answer as CSV here.")] = None,
    config: ConfigOption = None,
) -> None:
    """Ask the district's lake a question across communities (DuckDB over the Iceberg tables)."""
    from district.query import QUESTIONS, run_question, run_sql

    if engine not in ("arrow", "files", "iceberg"):
        raise typer.BadParameter("choose arrow, files or iceberg", param_hint="--engine")
    with _district(config) as settings:
        if sql:
            answer = run_sql(settings, sql, engine)  # type: ignore[arg-type]
        elif name:
            answer = run_question(settings, name, engine)  # type: ignore[arg-type]
        else:
            for key, question in QUESTIONS.items():
                console.print(f"{key:32} {question.description}")
            return
        if csv is not None:
            import pyarrow.csv as pacsv

            pacsv.write_csv(answer, csv)
        _show(answer, limit)


def _show(answer: Any, limit: int) -> None:
    table = Table(*answer.column_names)
    for row in answer.slice(0, limit).to_pylist():
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)
    if answer.num_rows > limit:
        console.print(f"… {answer.num_rows - limit} more row(s) (--limit, --csv)")


@app.command()
def compact(
    feed: Annotated[list[str] | None, typer.Option(help="Only these feeds; repeatable.")] = None,
    config: ConfigOption = None,
) -> None:
    """Rewrite every Iceberg partition held in several small files as one file."""
    from district.lake import Lake

    with _district(config) as settings:
        lake = Lake(settings)
        for name in feed or sorted(lake.feeds()):
            before, after = lake.compact(name)
            console.print(f"{name}: {before} data file(s) → {after}")


@app.command()
def status(config: ConfigOption = None) -> None:
    """Each table: snapshots (commits), data files, rows, partition versions held."""
    from district.lake import Lake, ledger

    with _district(config) as settings:
        lake = Lake(settings)
        table = Table("feed", "snapshots", "data files", "rows", "partitions held")
        for feed, name in sorted(lake.feeds().items()):
            iceberg = lake.catalog.load_table(f"{settings.namespace}.{name}")
            snapshot = iceberg.current_snapshot()
            summary = snapshot.summary.additional_properties if snapshot and snapshot.summary else {}
            table.add_row(
                feed,
                str(len(iceberg.snapshots())),
                summary.get("total-data-files", "0"),
                summary.get("total-records", "0"),
                str(len(ledger(iceberg))),
            )
        console.print(table)


@app.command()
def receipt(
    hub: Annotated[str, typer.Argument(help="The community id of the hub.")],
    out: Annotated[
        Path | None, typer.Option(help="Write the receipt (compact JWS) here instead of printing it.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """A signed receipt of what the district holds of one hub (compact JWS, the district's receipt key)."""
    from district.lake import Lake
    from district.receipts import receipt_for

    with _district(config) as settings:
        settings.hub(hub)
        token = receipt_for(settings, Lake(settings), hub)
        if out is not None:
            out.write_text(token + "\n")
            console.print(f"receipt for {hub} written to {out}")
        else:
            print(token)
