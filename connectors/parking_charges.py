"""System 1, parking charges: what visitors paid at the exit, from the parking vendor's HTTP API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pyarrow as pa

from connectors.base import records_to_raw_batch
from connectors.http import http_session, paged
from neuron.settings import ParkingSource
from schemas.contract import Contract, load_contract


class ParkingCharges:
    """Charges updated in a window, read page by page from `/api/v2/parking-charges`."""

    name = "parking_charges"

    def __init__(self, settings: Any):
        self.source: ParkingSource = settings.parking
        self.contract: Contract = load_contract(self.name)

    def extract(self, since: datetime, until: datetime) -> Iterator[pa.RecordBatch]:
        """Yield one raw batch per page of charges updated in [since, until)."""
        session = http_session(self.source.token.get_secret_value(), self.source.max_retries)
        params = {
            "updated_since": since.isoformat(),
            "updated_until": until.isoformat(),
            "page_size": self.source.page_size,
        }
        url = self.source.base_url.rstrip("/") + "/api/v2/parking-charges"
        with session:
            for page in paged(session, url, params, self.source.timeout_seconds, "parking vendor API"):
                if page:
                    yield records_to_raw_batch(self.contract, page)
