"""`neuron inbox`: the carrier IoT inbox (CTWing and OneNET HTTP pushes), and its device register.

Kept out of neuron/cli.py (registered there with one line); heavy imports happen inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kernel.errors import NeuronError
from kernel.logging import setup_logging
from kernel.settings import Settings, load_settings

inbox_app = typer.Typer(
    help="The carrier IoT inbox: NB-IoT detectors and covers pushed by CTWing and OneNET.",
    invoke_without_command=True,
)
console = Console()


def _settings() -> Settings:
    setup_logging()
    return load_settings()


@inbox_app.callback()
def inbox(ctx: typer.Context) -> None:
    """Run the inbox until Ctrl-C/SIGTERM: every push durable before its 200, then decoded, de-duplicated,
    landed for the home_safety and manhole_covers streams, alarms published for the relay."""
    if ctx.invoked_subcommand is not None:
        return
    from connectors.carrier.service import run_inbox

    try:
        stats = run_inbox(_settings())
    except NeuronError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from exc
    console.print(f"inbox stopped: {stats}")


@inbox_app.command("devices")
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
    from connectors.carrier.service import inbox_settings
    from privacy.keys import HubKeys

    settings = _settings()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        console.print(f"[red]error:[/red] cannot read {file}: {exc.strerror}")
        raise typer.Exit(code=1) from None
    try:
        register = DeviceRegister.from_csv(text)
        register.save(HubKeys.load(settings), settings.state_path / inbox_settings(settings).devices_file)
    except NeuronError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from exc
    console.print(f"{len(register)} carrier devices registered (encrypted); the CSV can now be deleted")
