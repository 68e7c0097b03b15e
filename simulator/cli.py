"""The simulator's commands, `neuron simulate` and `neuron demo`.

They live here, not in the product: the product never imports the simulator. The `neuron`
command line finds them through the `neuron.commands` entry points (pyproject.toml), and
says how to install the simulator where it is absent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kernel.logging import setup_logging

console = Console()


def simulate(
    port: Annotated[int, typer.Option(help="Port of the parking vendor API.")] = 8701,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same community.")] = 7,
    token: Annotated[str, typer.Option(envvar="NEURON_PARKING__TOKEN", help="Bearer token the API expects.")] = "",
    truth: Annotated[Path | None, typer.Option(help="Write the identifiers generated here (for leak scans).")] = None,
    viid_port: Annotated[
        int, typer.Option(help="Also serve public security's upper VIID platform (GA/T 1400) on this port; 0: no.")
    ] = 0,
    viid_subscribe: Annotated[
        str, typer.Option(help="The hub's VIID base URL (its [viid] listen address): subscribe it to vehicles.")
    ] = "",
    ngsi_ld_port: Annotated[
        int | None, typer.Option(help="Also serve the city brain's NGSI-LD broker (simulator/ngsi_broker.py) here.")
    ] = None,
) -> None:
    """Serve a simulated Music Square (the parking vendor's API) on 127.0.0.1 until Ctrl-C."""
    import contextlib
    import secrets
    import time

    from simulator.ngsi_broker import start_broker
    from simulator.parking import ParkingSimulator
    from simulator.server import start_parking_api
    from simulator.truth import write_truth

    token = token or secrets.token_urlsafe(16)
    sim = ParkingSimulator(seed=seed)
    with contextlib.ExitStack() as peers, start_parking_api(sim, token=token, port=port) as server:
        console.print(f"parking vendor API on {server.url}  (NEURON_PARKING__BASE_URL={server.url})")
        if ngsi_ld_port is not None:
            broker = peers.enter_context(start_broker(port=ngsi_ld_port))
            console.print(f"NGSI-LD broker on {broker.url}  (broker_url of a [[push.ngsi_ld]] entry)", markup=False)
        console.print("token: set NEURON_PARKING__TOKEN to the token you passed (not printed)")
        if viid_port:
            peers.callback(_serve_viid_upper(viid_port, viid_subscribe))
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            if truth is not None:
                write_truth(sim, truth)


def _serve_viid_upper(port: int, subscribe: str) -> Callable[[], None]:
    """Start the upper VIID platform (the Digest password in NEURON_VIID__PASSWORD, as the hub's);
    subscribe the hub once it has registered; return how to stop it (printing what it received)."""
    import os
    import threading

    from simulator.viid_upper import UpperConfig, UpperPlatform

    password = os.environ.get("NEURON_VIID__PASSWORD", "")
    if not password:
        raise typer.BadParameter("set NEURON_VIID__PASSWORD: the upper's Digest password, the hub's too")
    upper = UpperPlatform(UpperConfig(password=password), port=port).start()
    console.print(f"upper VIID platform on {upper.url}  (NEURON_VIID__UPPER_URL={upper.url})")
    stop = threading.Event()

    def subscribe_when_registered() -> None:
        while not stop.wait(1.0):
            if upper.registered:
                sid, code = upper.subscribe(subscribe)
                console.print(f"upper VIID platform: vehicle subscription {sid} answered StatusCode {code}")
                return

    if subscribe:
        threading.Thread(target=subscribe_when_registered, daemon=True).start()

    def close() -> None:
        stop.set()
        console.print(upper.summary())
        upper.stop()

    return close


def demo(
    home: Annotated[Path, typer.Option(help="Where the demo hub lives (wiped at start).")] = Path("var/demo"),
    day: Annotated[str | None, typer.Option(help="Simulated local day; default: yesterday.")] = None,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the API afterwards.")] = True,
    port: Annotated[int, typer.Option(help="Port of the export API.")] = 8700,
) -> None:
    """The whole pipeline on embedded defaults: simulator → Airflow → lake → signed API."""
    from simulator.demo import run_demo

    setup_logging()
    run_demo(console, home.resolve(), date.fromisoformat(day) if day else None, serve_api, port)
