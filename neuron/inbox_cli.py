"""`neuron inbox`: the carrier IoT inbox (CTWing and OneNET HTTP pushes), and its device register.

Kept out of neuron/cli.py (registered there with one line); heavy imports happen inside the commands.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from kernel.errors import FatalError, NeuronError
from kernel.logging import setup_logging
from kernel.settings import Settings, load_settings
from neuron.user_errors import user_error

inbox_app = typer.Typer(
    help="The carrier IoT inbox: NB-IoT detectors and covers pushed by CTWing and OneNET.",
    invoke_without_command=True,
)
console = Console()


def _settings() -> Settings:
    setup_logging()
    return load_settings()


def _one_line(callback: Callable[..., Any]) -> Callable[..., Any]:
    """The hub's errors and the world's (files, ports, configuration, the inbox's SQLite) as one line."""

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except (NeuronError, OSError, ValidationError, sqlite3.Error) as exc:
            if isinstance(exc, sqlite3.Error):
                error: NeuronError = FatalError(f"the inbox's database cannot be used ({type(exc).__name__})")
            else:
                error = exc if isinstance(exc, NeuronError) else user_error(exc)
            console.print(f"[red]error:[/red] {error}")
            raise typer.Exit(code=1) from exc

    return run


@inbox_app.callback()
@_one_line
def inbox(ctx: typer.Context) -> None:
    """Run the inbox until Ctrl-C/SIGTERM: every push durable before its 200, then decoded, de-duplicated,
    landed for the home_safety and manhole_covers streams, alarms published for the relay."""
    if ctx.invoked_subcommand is not None:
        return
    from connectors.carrier.service import run_inbox

    stats = run_inbox(_settings())
    console.print(f"inbox stopped: {stats}")


@inbox_app.command("devices")
@_one_line
def devices(
    file: Annotated[
        Path,
        typer.Argument(
            help="The installer's CSV: carrier, product_id, carrier_device_id, imei, "
            "device_id, household_id, building, unit, detector, cover_type."
        ),
    ],
) -> None:
    """Replace the register of carrier devices with FILE (kept only encrypted; delete FILE afterwards)."""
    from connectors.carrier.devices import DeviceRegister
    from privacy.keys import HubKeys

    settings = _settings()
    register = DeviceRegister.from_csv(file.read_text(encoding="utf-8"))
    register.save(HubKeys.load(settings), settings.state_path / settings.inbox.devices_file)
    console.print(f"{len(register)} carrier devices registered (encrypted); the CSV can now be deleted")
