"""System 1, the parking vendor's HTTP API: one paged endpoint per stream, same shape."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pyarrow as pa

from connectors.base import SourceState, records_to_raw_batch
from connectors.http import WindowBudget, http_session, paged
from kernel.settings import HttpSource, Settings
from schemas.contract import Contract


class ParkingApiStream:
    """Records updated in a window, read page by page from one of the vendor's endpoints."""

    def __init__(self, settings: Settings, contract: Contract, state: SourceState | None = None):
        self.contract, self.name = contract, contract.name
        self.path: str = contract.source.path if contract.source and contract.source.path else ""
        self.source: HttpSource = settings.parking

    def extract(self, since: datetime, until: datetime) -> Iterator[pa.RecordBatch]:
        """Yield one raw batch per page of records updated in [since, until)."""
        session = http_session(self.source.token.get_secret_value(), self.source.max_retries)
        params = {
            "updated_since": since.isoformat(),
            "updated_until": until.isoformat(),
            "page_size": self.source.page_size,
        }
        url = self.source.base_url.rstrip("/") + self.path
        with session:
            budget = WindowBudget("parking vendor API", self.source.window_seconds, self.source.max_pages)
            pages = paged(
                session,
                url,
                params,
                self.source.timeout_seconds,
                "parking vendor API",
                budget=budget,
                max_bytes=self.source.max_response_bytes,
            )
            for page in pages:
                if page:
                    yield records_to_raw_batch(self.contract, page)
