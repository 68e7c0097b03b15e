"""What one request tells the audit log, filled in as the request passes the gate and the route."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from api.auth import Caller


@dataclass
class RequestNote:
    """Who asked, which feed, what was served (partitions, rows, fields, digest) or why not."""

    caller: Caller | None = None
    feed: str | None = None
    rows: int | None = None
    policy_fingerprint: str | None = None
    partitions: list[dict[str, Any]] = field(default_factory=list)
    fields: list[str] | None = None  # the columns served, as the policy grants them
    format: str | None = None
    response_digest: str | None = None  # the Content-Digest of the body the consumer received
    reason: str | None = None  # a fixed refusal code, never a request value

    def detail(self) -> dict[str, Any] | None:
        """The entry's `detail`: what was served and the refusal reason, where there are any."""
        detail: dict[str, Any] = {}
        if self.partitions:
            detail["partitions"] = self.partitions
        if self.fields is not None:
            detail["fields"] = self.fields
        if self.format:
            detail["format"] = self.format
        if self.response_digest:
            detail["response_digest"] = self.response_digest
        if self.reason:
            detail["reason"] = self.reason
        return detail or None
