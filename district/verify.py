"""The district's checks beyond the consumer client's (api.client/api.verify check response
signatures, Content-Digest, the signed manifest against the bytes, rows and schema): the
hub's keys against the district's pin, and every row against the partition it came in and
the community the hub speaks for — a hub may only ever write its own community's rows."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from district.config import HubEntry
from district.lake import COMMUNITY, parse_partition_key
from kernel.errors import ConfigError, IntegrityError
from privacy.tls import jwks_fingerprint


def pinned_jwks(hub: HubEntry, home: Path) -> dict[str, Any] | None:
    """The JWKS pinned as a file (None when the hub is pinned by fingerprint)."""
    if hub.jwks_file is None:
        return None
    path = hub.jwks_file if hub.jwks_file.is_absolute() else home / hub.jwks_file
    try:
        jwks = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"hub {hub.community_id}: its pinned JWKS {path} is not readable JSON") from exc
    if not isinstance(jwks, dict):
        raise ConfigError(f"hub {hub.community_id}: its pinned JWKS {path} is not a JSON object")
    return jwks


def check_fingerprint(hub: HubEntry, jwks: dict[str, Any]) -> None:
    """IntegrityError unless the JWKS the hub served is the one pinned by fingerprint."""
    if hub.jwks_fingerprint is not None and jwks_fingerprint(jwks) != hub.jwks_fingerprint:
        raise IntegrityError(f"hub {hub.community_id}: its JWKS does not match the pinned fingerprint")


def check_rows(rows: pa.Table, hub: HubEntry, feed: str, partition_key: str) -> None:
    """Every row belongs to the partition it came in, and the partition to the hub's community."""
    values = parse_partition_key(partition_key)
    where = f"{feed} partition {partition_key}"
    if values[COMMUNITY] != hub.community_id:
        raise IntegrityError(f"hub {hub.community_id} served {where}, which is another community's")
    for column, expected in values.items():
        if column not in rows.column_names:
            raise IntegrityError(f"{where}: the rows lack the partition column {column}")
        if rows.num_rows == 0:
            continue
        found = rows.column(column)
        want: Any = expected if column == COMMUNITY else date.fromisoformat(expected)
        if found.null_count or not pc.all(pc.equal(found, pa.scalar(want, found.type))).as_py():
            raise IntegrityError(f"{where}: rows with another {column} than the partition's")
