"""`neuron viid`: the GA/T 1400 cascade to public security's VIID platform (peers/viid/)."""

from __future__ import annotations

import typer
from rich.console import Console

from kernel.logging import setup_logging
from kernel.settings import load_settings

console = Console()


def viid() -> None:
    """Run the hub as a lower VIID platform until Ctrl-C/SIGTERM: register, serve subscriptions, push passes."""
    from peers.viid.run import run_viid

    setup_logging()
    stats = run_viid(load_settings())  # the hub's errors become one line (neuron.cli)
    console.print(
        f"viid stopped: {stats.objects_acknowledged} passes acknowledged in {stats.acknowledged} notifications, "
        f"{stats.refused} refused, {stats.registrations} registrations"
    )


def register(app: typer.Typer) -> None:
    app.command(name="viid")(viid)
