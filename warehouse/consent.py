"""Households' consent to the optional functions (in-home smoke/gas detection, elderly care).

The platform is the source of truth: its connector records each household's opt-in or
withdrawal here, the household named only by its staging pseudonym (identifier kind
"household"). Data of households that have not opted in is never published (the
publisher filters feeds marked `consent:`), and a withdrawal takes effect at the next
publish and at once purges that household's rows from the raw vault.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import pyarrow.compute as pc
from sqlalchemy import select

from kernel.errors import ConfigError
from kernel.settings import Settings
from privacy.deidentify import staging_key
from privacy.keys import HubKeys
from privacy.pseudonymise import pseudonymise_column
from schemas.contract import Contract, load_contract
from warehouse import vault
from warehouse.audit import append_audit
from warehouse.control import session_scope
from warehouse.models import ConsentRecord, LoadRecord, utcnow

log = logging.getLogger(__name__)

Function = Literal["smoke_gas", "elderly_care"]
FUNCTIONS: tuple[Function, ...] = ("smoke_gas", "elderly_care")
HOUSEHOLD = "household"  # the identifier kind of household fields in contracts


@dataclass(frozen=True)
class ConsentChange:
    """What recording one consent did."""

    changed: bool
    withdrawn: bool
    purged_objects: list[str]


def record_consent(
    settings: Settings,
    household_token: str,
    function: Function,
    granted: bool,
    source: str,
    changed_at: datetime | None = None,
    contracts: Iterable[Contract] | None = None,
) -> ConsentChange:
    """Record a household's consent; a withdrawal purges its raw-vault rows at once.

    An update older than the one recorded is ignored (the platform may replay history).
    """
    if function not in FUNCTIONS:
        raise ValueError(f"unknown optional function {function!r}")
    changed_at = changed_at or utcnow()
    with session_scope(settings.control_url) as session:
        current = session.get(ConsentRecord, (household_token, function))
        if current is not None and current.changed_at > changed_at:
            return ConsentChange(False, False, [])
        withdrawn = not granted and (current is None or current.granted)
        if current is None:
            session.add(
                ConsentRecord(
                    household_token=household_token,
                    function=function,
                    granted=granted,
                    changed_at=changed_at,
                    source=source,
                )
            )
        else:
            current.granted, current.changed_at, current.source = granted, changed_at, source
    purged = purge_household(settings, household_token, function, contracts) if withdrawn else []
    with session_scope(settings.control_url) as session:
        # The audit log names the function and what was purged, never the household.
        append_audit(
            session,
            actor=source,
            action="consent",
            outcome="granted" if granted else "withdrawn",
            detail={"function": function, "purged_vault_objects": purged},
        )
    return ConsentChange(True, withdrawn, purged)


def consenting_households(settings: Settings, function: str) -> set[str]:
    """The staging tokens of the households that have opted in to `function`."""
    with session_scope(settings.control_url) as session:
        rows = session.execute(
            select(ConsentRecord.household_token).where(
                ConsentRecord.function == function, ConsentRecord.granted.is_(True)
            )
        )
        return set(rows.scalars())


def purge_household(
    settings: Settings, household_token: str, function: str, contracts: Iterable[Contract] | None = None
) -> list[str]:
    """Re-land every raw-vault object of the function's streams without the household's rows.

    A vault object is a whole batch: it keeps its id and its expiry, and only loses rows.
    Returns the ids of the objects rewritten.
    """
    keys = HubKeys.load(settings)
    with session_scope(settings.control_url) as session:
        ledger = [(r.stream, r.vault_object or r.batch_id) for r in session.execute(select(LoadRecord)).scalars()]
    by_stream = {c.name: c for c in contracts} if contracts is not None else None
    rewritten = []
    for stream, object_id in sorted(set(ledger)):
        contract = by_stream.get(stream) if by_stream is not None else _contract(stream)
        if contract is None or contract.consent != function:
            continue
        fields = [f.name for f in contract.direct_fields() if f.identifier_kind == HOUSEHOLD]
        header = vault.header(settings.vault_dir, object_id)
        if not fields or header is None:
            continue  # no household field, or already purged by retention
        raw = vault.read(settings.vault_dir, keys, object_id)
        token_key = staging_key(keys, HOUSEHOLD)
        keep = None
        for name in fields:
            other = pc.not_equal(pseudonymise_column(raw.column(name), token_key), household_token)
            other = pc.fill_null(other, True)
            keep = other if keep is None else pc.and_(keep, other)
        if keep is None or pc.all(keep).as_py():
            continue
        vault.land(settings.vault_dir, keys, object_id, raw.filter(keep), expires_at=header.expires_at)
        rewritten.append(object_id)
    log.info("consent withdrawn for %s: %d vault object(s) rewritten", function, len(rewritten))
    return rewritten


def _contract(stream: str) -> Contract | None:
    try:
        return load_contract(stream)
    except ConfigError:  # a stream whose contract is gone holds nothing we can filter
        return None


def apply_platform_consent(settings: Settings, staged: Any) -> int:
    """Record the consent rows a `platform_consent` batch loaded, oldest change first.

    `staged` is the batch's staging table (household pseudonym, function, granted,
    changed_at); a withdrawal among them purges that household's raw-vault rows.
    """
    rows = staged.select(["household_id_token", "function", "granted", "changed_at"]).to_pylist()
    for row in sorted(rows, key=lambda r: r["changed_at"]):
        record_consent(
            settings, row["household_id_token"], row["function"], row["granted"], "platform", row["changed_at"]
        )
    return len(rows)
