"""Vehicle passes as the upper VIID platform may receive them: the consumer's sharing policy for
`traffic.vehicle_passes`, applied record by record as the pipeline applies it to a partition.

The channel reads the parking vendor itself (it cannot wait for the hourly batch), so it does
here, in memory, what de-identification and the publisher do for that feed: a direct identifier
is treated from its raw value only by an operator that needs the raw value (`seal_to`: the same
deterministic sealing, so the same plate gives the same sealed value as in the published feed);
any other operator gets the staging pseudonym, as the publisher would. Then the one mapping to a
MotorVehicleObject that the export API's `viid` format uses (schemas/viid.py). Raw values never
leave this module; rows that break the contract are skipped with a reason naming the field (the
batch pipeline quarantines the same rows from the same vendor).

Ambiguity: A.11 gives PlateNo as string(15); a plate sealed to public security's key is ~100
characters (`nhs2.<key id>.<base64url>`, privacy/seal.py). The policy entitles the platform to the
plate only sealed (so not the clear plate, which would fit), so the sealed value rides in our own
member `PlateNoSealed` and PlateNo carries its 15-character keyed alias (schemas/viid.py
`plate_alias`, docs/formats.md): every object keeps the standard's length, and the key holder
opens the plate.
"""

from __future__ import annotations

import hmac
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import EXTRA_COLUMN
from kernel.errors import ConfigError
from kernel.settings import Settings
from privacy.deidentify import staging_key
from privacy.keys import HubKeys
from privacy.operators import OperatorContext
from privacy.policy import Policy
from privacy.pseudonymise import pseudonymise_column
from privacy.seal import Recipient
from privacy.view import FEED_TYPES, epoch_of
from schemas.contract import PROBLEM_COLUMN, Contract, PrivacyClass, load_contract
from schemas.feeds import Feed
from schemas.validate import cast_column
from schemas.viid import Pass, motor_vehicle, tollgate_id

FEED = "traffic.vehicle_passes"
STREAM = "vehicle_passes"


@dataclass(frozen=True)
class ChannelPass:
    """One pass ready for the upper: its vehicle object and what the channel needs to route it."""

    record_key: str  # keyed hash of the vendor's record id (never the id itself)
    pass_time: datetime  # UTC
    vehicle: dict[str, Any]


def contract_problems(contract: Contract, raw: pa.Table) -> tuple[pa.Table, list[str | None]]:
    """The rows cast to the contract's types and, per row, why it breaks the contract (None: it does not).

    The contract's row checks (type, required, pattern, allowed values, range, frozen schema), as
    the validate stage applies them; without the data-quality suite's batch expectations.
    """
    # A record the connector could not read (a value that is not UTF-8 text...) carries its reason.
    problems = raw.column(PROBLEM_COLUMN).to_pylist() if PROBLEM_COLUMN in raw.column_names else None
    reasons: list[str | None] = problems or [None] * raw.num_rows
    extra = raw.column(EXTRA_COLUMN).to_pylist() if EXTRA_COLUMN in raw.column_names else []
    for i, names in enumerate(extra):
        if names and contract.evolution == "freeze":
            reasons[i] = "schema drift: unexpected field(s)"
    columns = []
    for f in contract.fields:
        text = raw.column(f.name).combine_chunks()
        values, failed = cast_column(text, f)
        columns.append(values)
        for i, (value, bad) in enumerate(zip(text.to_pylist(), failed.to_pylist(), strict=True)):
            if reasons[i]:
                continue
            if bad:
                reasons[i] = f"{f.name}: not a valid {f.type}"
            elif value is None:
                reasons[i] = None if f.nullable else f"{f.name}: missing"
            elif f.checks.pattern and not re.search(f.checks.pattern, value):
                reasons[i] = f"{f.name}: does not match its pattern"
            elif f.checks.allowed and value not in f.checks.allowed:
                reasons[i] = f"{f.name}: not an allowed value"
    table = pa.Table.from_arrays(columns, names=[f.name for f in contract.fields])
    for f in contract.fields:
        if f.checks.min is None and f.checks.max is None:
            continue
        for i, value in enumerate(table.column(f.name).to_pylist()):
            low = f.checks.min is not None and value is not None and value < f.checks.min
            high = f.checks.max is not None and value is not None and value > f.checks.max
            if not reasons[i] and (low or high):
                reasons[i] = f"{f.name}: out of range"
    return table, reasons


class PassView:
    """The consumer's view of `traffic.vehicle_passes`, one batch of raw vendor records at a time."""

    def __init__(
        self, settings: Settings, keys: HubKeys, policy: Policy, feed: Feed, recipient: Recipient | None
    ) -> None:
        grant = policy.feeds.get(FEED)
        if grant is None:
            raise ConfigError(f"[viid] consumer {policy.consumer!r}: its policy does not grant {FEED}")
        if feed.consent or grant.k:
            raise ConfigError(f"[viid] {FEED} for {policy.consumer!r} is consent- or k-checked: it cannot be streamed")
        self.fields = policy.published_fields(feed)
        if any(policy.operator(FEED, f).name == "seal_to" for f in self.fields) and recipient is None:
            raise ConfigError(
                f"[viid] {policy.consumer!r} is entitled to sealed values but has no encryption key: "
                f"`neuron consumers add {policy.consumer} --encryption-key`"
            )
        self.settings, self.keys, self.policy, self.feed, self.recipient = settings, keys, policy, feed, recipient
        self.contract = load_contract(STREAM)
        self.period = policy.pseudonym_epoch or settings.pseudonym_epoch
        self.zone = ZoneInfo(settings.timezone)
        self._key = keys.derive("viid-seen", settings.community_id)

    def record_key(self, record_id: str) -> str:
        return hmac.new(self._key, record_id.encode(), "sha256").hexdigest()

    def passes(self, raw: pa.Table) -> tuple[list[ChannelPass], Counter[str]]:
        """The good rows as vehicle objects (in the vendor's order) and the skipped rows' reasons."""
        typed, reasons = contract_problems(self.contract, raw)
        skipped = Counter(r for r in reasons if r)
        good = typed.filter(pa.array([r is None for r in reasons], pa.bool_()))
        if not good.num_rows:
            return [], skipped
        times = good.column("pass_time").to_pylist()
        days = [t.astimezone(self.zone).date() for t in times]
        view = self._view(good, days)
        out = []
        for i, row in enumerate(view):
            vehicle = motor_vehicle(Pass.of(row))
            if row.get("gate_code"):
                vehicle["TollgateID"] = tollgate_id(str(row.get("community_id") or ""), row["gate_code"])
            key = self.record_key(f"{good.column('community_id')[i].as_py()}\x1f{good.column('record_id')[i].as_py()}")
            out.append(ChannelPass(key, times[i], vehicle))
        return out, skipped

    def _view(self, good: pa.Table, days: list[Any]) -> list[dict[str, Any]]:
        """The policy's fields for each row (rows of each day with that day's pseudonym epoch)."""
        base = {
            "community_id": good.column("community_id"),
            "day": pa.array(days, pa.date32()),
            "pass_time": good.column("pass_time"),
            "gate_code": good.column("gate_code"),
            "direction": good.column("direction"),
            "vehicle_type": good.column("vehicle_type"),
            "new_energy": pc.equal(good.column("plate_color"), "green"),
            "plate_no": good.column("plate_no"),
        }
        rows: list[dict[str, Any]] = [{} for _ in range(good.num_rows)]
        for day in sorted(set(days)):
            index = pa.array([i for i, d in enumerate(days) if d == day], pa.int64())
            epoch = epoch_of(day, self.period)
            for name in self.fields:
                column = self._treated(name, pc.take(base[name], index), epoch)
                for i, value in zip(index.to_pylist(), column.to_pylist(), strict=True):
                    rows[i][name] = value
        return rows

    def _treated(self, name: str, column: pa.Array | pa.ChunkedArray, epoch: str) -> pa.Array:
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        feed_field = self.feed.field(name)
        operator = self.policy.operator(FEED, name)
        if feed_field.privacy is PrivacyClass.DIRECT and not operator.raw_input:
            # As the publisher: operators that do not need the raw value get the staging pseudonym.
            kind = self.contract.field(name).identifier_kind
            column = pseudonymise_column(column, staging_key(self.keys, kind))
        ctx = OperatorContext(
            self.policy.consumer,
            feed_field,
            self.keys,
            epoch,
            self.policy.k_for(FEED),
            self.recipient,
            self.settings.community_id,
            self.settings.timezone,
            feed=FEED,  # sealing binds the feed: the same value as in the published feed
        )
        treated = operator.apply(column, ctx)
        return treated.cast(operator.output_type(FEED_TYPES[feed_field.type]))
