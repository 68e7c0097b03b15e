"""The district's test bench: a few real hubs (the export API under uvicorn on loopback, as in
tests/api) and the signed-feed server (simulator/feed_server.py) playing the other
communities, all with the district registered as a consumer with its own key."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.app import create_app
from api.consumers import register_consumer
from district.config import DistrictSettings, HubEntry
from district.keys import init_keys, load_key, public_pem
from district.lake import Lake, table_name
from kernel.settings import ApiSettings, Settings
from privacy.keys import HubKeys, SigningKey
from privacy.keys import init_keys as init_hub_keys
from schemas.feeds import load_feeds
from simulator.feed_server import FeedServer, district_fields, partition_table
from tests.api.hub import ROOMY, ServerThread
from tests.api.lake import publish_table
from warehouse.migrations import migrate

REPO = Path(__file__).resolve().parents[2]
DAY = date(2026, 11, 20)


@dataclass
class RealHub:
    """A real export API publishing the district's feeds of one community."""

    community_id: str
    settings: Settings
    key: SigningKey
    url: str
    jwks: dict[str, Any]
    published: list[tuple[str, str, int, pa.Table]] = field(default_factory=list)  # feed, key, version, rows

    def publish(self, feed: str, day: date, version: int | None = None) -> None:
        """The next version of the feed's partition of `day` (of its month for monthly feeds)."""
        spec = load_feeds()[feed]
        time = "month" if "month" in spec.partition_by else "day"
        day = day.replace(day=1) if time == "month" else day
        key = f"community_id={self.community_id}/{time}={day.isoformat()}"
        version = version or 1 + max((v for f, k, v, _ in self.published if (f, k) == (feed, key)), default=0)
        table = partition_table(spec, district_fields()[feed], self.community_id, day, version)
        watermark = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        publish_table(self.settings, self.key, "district", feed, key, version, table, watermark)
        self.published.append((feed, key, version, table))


@contextmanager
def real_hub(home: Path, community_id: str, district_key: Ed25519PrivateKey, feeds: list[str]) -> Iterator[RealHub]:
    """A hub of `community_id` under `home` with the real district policy and one day of `feeds`."""
    policies = home / "policies"
    policies.mkdir(parents=True)
    shutil.copy(REPO / "config" / "policies" / "district.yaml", policies / "district.yaml")
    settings = Settings(
        home=home,
        community_id=community_id,
        state_dir=Path("var"),
        lake_dir=Path("lake"),
        control_db_url="",
        master_secret=None,
        policies_dir=policies,
        api=ApiSettings(signature_window_seconds=300),
    )
    init_hub_keys(settings)
    migrate(settings.control_url)
    register_consumer(settings, "district", public_pem(district_key))
    key = HubKeys.load(settings).active_signing_key
    with ServerThread(create_app(settings, options=ROOMY)) as server:
        jwks = requests.get(server.url + "/.well-known/jwks.json", timeout=10).json()
        hub = RealHub(community_id, settings, key, server.url, jwks)
        for feed in feeds:
            hub.publish(feed, DAY)
        yield hub


@dataclass
class Bench:
    """Real hubs, the feed server's communities, and the district's settings over all of them."""

    home: Path
    server: FeedServer
    real: dict[str, RealHub]
    settings: DistrictSettings

    def lake(self) -> Lake:
        return Lake(self.settings)

    def expected(self) -> dict[str, dict[tuple[str, str], tuple[int, pa.Table]]]:
        """feed → (community, partition key) → the newest version published and its rows."""
        found: dict[str, dict[tuple[str, str], tuple[int, pa.Table]]] = {}
        import pyarrow.parquet as pq

        for community, played in self.server.communities.items():
            for v in played.versions:
                slot = found.setdefault(v.feed, {})
                if (community, v.partition_key) not in slot or slot[(community, v.partition_key)][0] < v.version:
                    slot[(community, v.partition_key)] = (v.version, pq.read_table(pa.BufferReader(v.data)))
        for community, hub in self.real.items():
            for feed, key, version, table in hub.published:
                slot = found.setdefault(feed, {})
                if (community, key) not in slot or slot[(community, key)][0] < version:
                    slot[(community, key)] = (version, table)
        return found


def district_settings(home: Path, hubs: list[HubEntry], **options: Any) -> DistrictSettings:
    settings = DistrictSettings(home=home / "district", hubs=hubs, **options)
    init_keys(settings)
    return settings


@contextmanager
def district_bench(
    home: Path, played: int = 3, real: int = 1, feeds: list[str] | None = None, **options: Any
) -> Iterator[Bench]:
    """`real` real hubs and `played` communities on the feed server, each with one day published."""
    feeds = feeds or sorted(district_fields())
    base = district_settings(home, [])
    key = load_key(base.resolve(base.key_file))
    pins = base.home_path / "pins"
    pins.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        server = stack.enter_context(FeedServer())
        entries: list[HubEntry] = []
        hubs: dict[str, RealHub] = {}
        for i in range(real):
            community = f"real-{i}"
            hub = stack.enter_context(real_hub(home / community, community, key, feeds))
            hubs[community] = hub
            (pins / f"{community}.json").write_text(json.dumps(hub.jwks))
            entries.append(
                HubEntry(
                    community_id=community,
                    subdistrict="changshou-road",
                    url=hub.url,
                    jwks_file=pins / f"{community}.json",
                )
            )
        from district.keys import key_id

        for i in range(played):
            community = f"played-{i:03d}"
            server.add_community(community, key.public_key(), key_id("district", key))
            for feed in feeds:
                server.publish(community, feed, DAY)
            (pins / f"{community}.json").write_text(json.dumps(server.communities[community].jwks))
            subdistrict = "changshou-road" if i % 2 else "caoyang-xincun"
            entries.append(
                HubEntry(
                    community_id=community,
                    subdistrict=subdistrict,
                    url=server.base_url(community),
                    jwks_file=pins / f"{community}.json",
                    retries=0,
                    timeout_seconds=5,
                )
            )
        settings = DistrictSettings(home=base.home_path, hubs=entries, **options)
        yield Bench(home, server, hubs, settings)


def sorted_rows(table: pa.Table) -> pa.Table:
    return table.sort_by([(name, "ascending") for name in table.column_names])


def assert_lake_holds(bench: Bench, refused: set[tuple[str, str, str]] = frozenset()) -> None:  # type: ignore[assignment]
    """The tables equal the newest published versions, minus the (community, feed, key) refused:
    nothing doubled, nothing missing, no stale version."""
    lake = bench.lake()
    for feed, partitions in bench.expected().items():
        table = lake.load(feed)
        assert table is not None, feed
        held = {k: h.version for k, h in lake.held(feed).items()}
        wanted = {k: v for k, (v, _) in partitions.items() if (k[0], feed, k[1]) not in refused}
        assert {k: v for k, v in held.items() if k in wanted} == wanted, feed
        actual = table.scan().to_arrow()
        target = actual.schema
        expected_tables = []
        for (community, key), (_, rows) in partitions.items():
            if (community, feed, key) in refused:
                continue
            expected_tables.append(rows.select(target.names).cast(target))
        expected = pa.concat_tables(expected_tables)
        refused_communities = {c for c, f, _ in refused if f == feed}
        if refused_communities:
            mask = pc.invert(pc.is_in(actual.column("community_id"), pa.array(sorted(refused_communities))))
            keep = pc.invert(pc.is_in(expected.column("community_id"), pa.array(sorted(refused_communities))))
            # refused partitions may still have an older version held: compare the others exactly
            actual, expected = actual.filter(mask), expected.filter(keep)
        assert sorted_rows(actual).equals(sorted_rows(expected)), feed


def table_of(feed: str) -> str:
    return table_name(feed)
