"""The hub the API benchmark loads: a private home with keys, the district's policy and
consumer key, a few small partitions and one large one, served by uvicorn exactly as
`neuron serve` serves it (`python -m bench.api_setup HOME PORT [WORKERS]`).

With WORKERS > 1, uvicorn runs that many processes on one socket, each with its own app
(the same factory), as a deployment with several workers would: nonces and the audit
chain are shared through the control database; rate-limit buckets would need Redis
(`api.redis_url`), which the benchmark leaves off because its limits are never reached."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.app import SERVER_OPTIONS, create_app
from api.consumers import register_consumer
from api.formats import ndjson_tables
from api.partition_ids import PartitionIds
from kernel.settings import ApiSettings, Settings
from privacy.keys import HubKeys, init_keys
from tests.api.hub import write_policies
from tests.api.lake import FEED, publish, publish_table
from warehouse.migrations import migrate

BIG_DAY = date(2026, 11, 30)
# The benchmark measures the hub's work per request, not its limits: none is reached.
OPTIONS = ApiSettings(rate_per_second=1e6, rate_burst=10**7, anonymous_rate_per_second=1e6, anonymous_burst=10**7)


@dataclass(frozen=True)
class Identity:
    """The district's key, as a client process needs it."""

    key_id: str
    private_pem: bytes


@dataclass(frozen=True)
class Setup:
    """What the benchmark needs to know about the hub it prepared."""

    identity: Identity
    jwks: dict[str, Any]
    partition_id: str
    static: str
    parquet_bytes: int


def bench_settings(home: Path) -> Settings:
    """Settings of the benchmark's hub (its own policies, the default page limits)."""
    return Settings(
        home=home,
        state_dir=Path("var"),
        lake_dir=Path("lake"),
        control_db_url="",
        master_secret=None,
        policies_dir=write_policies(home / "policies"),
        api=ApiSettings(max_page_size=10_000, default_page_size=1_000),
    )


def big_table(rows: int, seed: int = 7) -> pa.Table:
    """`rows` gate counts on one day, with realistic spread (so the file does not compress to nothing)."""
    random = np.random.default_rng(seed)
    start = np.datetime64(f"{BIG_DAY.isoformat()}T00:00:00", "us")
    counts = {name: random.integers(0, 5000, rows) for name in ("entries", "exits", "resident_entries")}
    return pa.table(
        {
            "community_id": pa.array(["music-square"] * rows),
            "day": pa.array([BIG_DAY] * rows, pa.date32()),
            "gate_code": pa.array([f"G{n % 997}" for n in range(rows)]),
            "hour_start": pa.array(start + np.arange(rows).astype("timedelta64[s]"), pa.timestamp("us", tz="UTC")),
            **{name: pa.array(values, pa.int64()) for name, values in counts.items()},
            "visitor_entries": pa.array(random.integers(0, 500, rows), pa.int64()),
            "new_energy_entries": pa.array(random.integers(0, 900, rows), pa.int64()),
            "charges_fen": pa.array(random.integers(0, 10**7, rows), pa.int64()),
        }
    )


def prepare_hub(home: Path, rows: int) -> Setup:
    """Keys, control DB, partitions, the consumer; static copies of what the hub will serve."""
    settings = bench_settings(home)
    init_keys(settings)
    migrate(settings.control_url)
    keys = HubKeys.load(settings)
    for day in range(20, 23):
        publish(settings, keys.active_signing_key, "district", date(2026, 11, day), 1, 24)
    table = big_table(rows)
    key = f"community_id=music-square/day={BIG_DAY.isoformat()}"
    seq = publish_table(settings, keys.active_signing_key, "district", FEED, key, 1, table)
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_id = register_consumer(settings, "district", public)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    static = home / "static"
    static.mkdir()
    parquet = next(settings.lake_path.glob(f"district/{FEED}/**/day={BIG_DAY.isoformat()}/v1.parquet"))
    shutil.copyfile(parquet, static / "partition.parquet")
    (static / "records.ndjson").write_bytes(ndjson_tables([pq.read_table(parquet)]))  # the pages, end to end
    return Setup(
        identity=Identity(key_id, pem),
        jwks=keys.jwks(),
        partition_id=PartitionIds(keys).encode("district", seq),
        static=str(static),
        parquet_bytes=parquet.stat().st_size,
    )


HOME_VARIABLE = "NEURON_BENCH_HOME"


PORT_VARIABLE = "NEURON_BENCH_PORT"


def bench_app() -> Any:
    """The app of the hub prepared under $NEURON_BENCH_HOME (uvicorn's factory for its workers)."""
    # Signed requests must name the hub they are for: the bench hub is 127.0.0.1:<its port>.
    names = ["127.0.0.1", f"127.0.0.1:{os.environ.get(PORT_VARIABLE, '8700')}"]
    options = OPTIONS.model_copy(update={"public_names": names})
    return create_app(bench_settings(Path(os.environ[HOME_VARIABLE])), options=options)


def serve(home: Path, port: int, workers: int = 1) -> None:
    """Serve the prepared hub on 127.0.0.1:port until terminated."""
    import uvicorn

    os.environ[HOME_VARIABLE] = str(home)
    os.environ[PORT_VARIABLE] = str(port)
    if workers == 1:
        uvicorn.run(bench_app(), host="127.0.0.1", port=port, log_level="warning", **SERVER_OPTIONS)
        return
    target = "bench.api_setup:bench_app"
    uvicorn.run(
        target, factory=True, workers=workers, host="127.0.0.1", port=port, log_level="warning", **SERVER_OPTIONS
    )


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 1)
