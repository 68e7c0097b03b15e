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
    intercom_port: Annotated[int, typer.Option(help="Port of the intercom/CCTV vendor API.")] = 8702,
    mqtt_port: Annotated[int, typer.Option(help="Port of the devices' MQTT broker (0: a free one).")] = 0,
    platform_db: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL of the WeChat platform DB; default a SQLite file in --state.")
    ] = None,
    drop: Annotated[
        Path | None, typer.Option(help="The door-access export's drop folder; default --state/doors.")
    ] = None,
    state: Annotated[Path, typer.Option(help="Where the simulation keeps its files.")] = Path("var/simulate"),
    speed: Annotated[float, typer.Option(help="Simulated seconds per real second (1: real time).")] = 1.0,
    devices: Annotated[bool, typer.Option("--devices/--no-devices", help="Run the MQTT devices and broker.")] = True,
    fire: Annotated[
        int | None, typer.Option(help="A kitchen fire in this building a minute in: all its smoke detectors alarm.")
    ] = None,
    communities: Annotated[
        int, typer.Option(help="How many communities (Music Square, then music-square-2 …), APIs on ports + 2n.")
    ] = 1,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same community.")] = 7,
    token: Annotated[
        str, typer.Option(envvar="NEURON_PARKING__TOKEN", help="Bearer token the parking API expects.")
    ] = "",
    intercom_token: Annotated[
        str, typer.Option(envvar="NEURON_INTERCOM__TOKEN", help="Bearer token the intercom API expects.")
    ] = "",
    truth: Annotated[
        Path | None, typer.Option(help="Keep every identifier generated here, rewritten as it goes (for leak scans).")
    ] = None,
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
    """Serve a simulated Music Square over each system's own protocol until Ctrl-C or SIGTERM."""
    import secrets

    from simulator.live import LiveCommunity, LiveOptions

    if speed <= 0:
        raise typer.BadParameter("must be above 0", param_hint="--speed")
    options = LiveOptions(
        state=state,
        seed=seed,
        speed=speed,
        parking_port=port,
        intercom_port=intercom_port,
        parking_token=token or secrets.token_urlsafe(16),
        intercom_token=intercom_token or secrets.token_urlsafe(16),
        platform_url=platform_db,
        drop=drop,
        mqtt_port=mqtt_port,
        devices=devices,
        fire_building=fire,
        truth=truth,
        ngsi_ld_port=ngsi_ld_port,
    )
    if communities < 1:
        raise typer.BadParameter("must be 1 or more", param_hint="--communities")
    live = LiveCommunity(
        options, say=lambda line: console.print(line, soft_wrap=True, highlight=False), communities=communities
    )

    def started(live: LiveCommunity) -> None:
        if viid_port:
            live.add_closer(_serve_viid_upper(viid_port, viid_subscribe))
        for system, url in live.urls.items():
            console.print(f"{system:>9}: {url}", soft_wrap=True, highlight=False)
        # Tokens are secrets: set them yourself (--token/--intercom-token or the env vars) to know them.
        console.print(f"simulated clock at {live.clock.now():%Y-%m-%d %H:%M} running x{speed:g}; Ctrl-C to stop")

    live.run(on_started=started)


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
    port: Annotated[int, typer.Option(help="Port of the export API and console.")] = 8700,
    airflow_port: Annotated[int, typer.Option(help="Port of Airflow's API server and UI.")] = 8080,
    console_port: Annotated[int, typer.Option(help="Port of the admin console.")] = 8710,
) -> None:
    """The whole community on embedded defaults: every simulated system → Airflow → lake →
    signed API for three consumers, alarms to their brokers; then the hub live."""
    from simulator.demo import run_demo

    setup_logging()
    when = date.fromisoformat(day) if day else None
    run_demo(console, home.resolve(), when, serve_api, port, airflow_port, console_port)
