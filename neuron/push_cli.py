"""`neuron push`: the hub's feeds and alarms into the consumers' NGSI-LD brokers ([[push.ngsi_ld]])."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from kernel.errors import NeuronError
from kernel.logging import setup_logging
from kernel.settings import load_settings

push_app = typer.Typer(help="Pushes to the consumers' NGSI-LD context brokers (push.ngsi_ld in the hub's TOML).")
console = Console()


@push_app.callback(invoke_without_command=True)
def push(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Push what is waiting, then exit.")] = False,
) -> None:
    """Upsert feeds as they publish and alarms as they happen, until Ctrl-C/SIGTERM."""
    if ctx.invoked_subcommand is not None:
        return
    from peers.ngsi_ld.service import push_once, run_push

    setup_logging()
    settings = load_settings()
    if not settings.push.ngsi_ld:
        console.print("no push.ngsi_ld consumer is configured in the hub's TOML: nothing to push", markup=False)
        return
    try:
        stats = push_once(settings) if once else run_push(settings)
    except NeuronError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from None
    console.print(
        f"push: {stats.feed_entities} feed entities, {stats.alert_rows} alarm states, {stats.failures} failures"
    )


@push_app.command("dead-letters")
def dead_letters(consumer: Annotated[str | None, typer.Option(help="Only this consumer.")] = None) -> None:
    """The entities a consumer's broker would not take (type and status of the error, never a value)."""
    from warehouse.push_dead_letters import dead_letters as open_letters

    table = Table("failed at", "consumer", "channel", "feed", "entity", "error", "status", "attempts")
    for d in open_letters(load_settings().control_url, consumer):
        row = [str(d["failed_at"]), d["consumer"], d["channel"], str(d["feed"] or ""), d["entity_id"]]
        table.add_row(*row, d["error_type"], str(d["status"]), str(d["attempts"]))
    console.print(table)


@push_app.command("resend")
def resend(
    consumer: Annotated[str | None, typer.Option(help="Only this consumer's dead letters.")] = None,
    letter: Annotated[
        list[int] | None, typer.Option("--id", help="Only these dead letters (see dead-letters).")
    ] = None,
) -> None:
    """Send the open dead letters again now (audited as a push); those taken are resolved."""
    from peers.ngsi_ld.consumer import ConsumerPush
    from peers.ngsi_ld.resend import resend_dead_letters

    setup_logging()
    settings = load_settings()
    pushes = [p for p in settings.push.ngsi_ld if consumer is None or p.name == consumer]
    if not pushes:
        console.print(f"no push.ngsi_ld consumer {consumer or ''} is configured in the hub's TOML", markup=False)
        raise typer.Exit(code=1)
    try:
        for push in pushes:
            done = resend_dead_letters(ConsumerPush(settings, push), "cli", ids=letter or None)
            counts = f"{done.letters} dead letters re-sent, {done.resolved} taken, {done.still_dead} refused again"
            console.print(f"{push.name}: {counts}", markup=False)
    except NeuronError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from None
