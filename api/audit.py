"""The audit log: an append-only, hash-chained record of every request and what it was served.

Each entry's hash covers the previous entry's hash and the entry's own fields (its `seq`
included), so editing, deleting or reordering entries breaks the chain, and the head row
names the last entry, so cutting off the tail shows too. Appends from many processes are
serialised by locking the head row first.
"""

from __future__ import annotations

from api.notes import RequestNote  # noqa: F401  (re-exported: routes and the gate import it from here)

# The chain itself lives in warehouse.audit (the publisher, retention and consent append too);
# re-exported here so the API's modules and tests keep importing it from api.audit.
from warehouse.audit import (  # noqa: F401
    GENESIS_HASH,
    HEAD_ID,
    append_audit,
    dump_detail,
    entry_fields,
    entry_hash,
    verify_chain,
)


def outcome_for(status: int) -> str:
    """The audit outcome of an HTTP status."""
    named = {401: "unauthorised", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
    named |= {422: "invalid_request", 429: "throttled"}
    if status < 400:
        return "ok"
    if status >= 500:
        return "error"
    return named.get(status, "refused")
