"""A consumer's view of a feed: its sharing policy applied to mart rows at publish time.

In order: rows of households that have not consented are dropped (feeds under consent, and
the in-home rows a policy sends on the basis of consent, not vital interest: issue 16);
each field the policy names goes through its operator (a direct field's raw-value
treatment comes from the staging column made for this consumer at de-identification);
counts under k get small-cell and complementary suppression; a microdata view under k is
checked on its quasi-identifiers and blocked whole if any group is smaller than k. Only
named fields come out, in the feed's order, so nothing is published that the policy does
not name. The same rows and policy always give the same table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from kernel.errors import NeuronError, PublishBlocked
from privacy.deidentify import staging_column
from privacy.disclosure import check_across_feeds
from privacy.kanon import check_k, suppression_masks
from privacy.keys import HubKeys
from privacy.operators import OperatorContext
from privacy.policy import Policy
from privacy.seal import Recipient
from schemas.contract import ARROW_TYPES, PrivacyClass
from schemas.feeds import Feed

FEED_TYPES: dict[str, pa.DataType] = {**ARROW_TYPES, "date": pa.date32()}


class Withheld(NeuronError):
    """This consumer cannot be given this partition yet (the reason is safe to log)."""


@dataclass(frozen=True)
class ViewContext:
    """What applying a policy needs besides the rows."""

    keys: HubKeys
    epoch: str
    consenting: set[str] | None = None  # household tokens, for feeds under consent
    community: str = ""
    timezone: str = "Asia/Shanghai"
    recipients: Mapping[str, Recipient] = field(default_factory=dict)  # for seal_to on non-direct fields
    # Household tokens that opted in, per consent function: for in-home rows sent on consent.
    consents: Mapping[str, frozenset[str]] = field(default_factory=dict)


def epoch_of(day: date, period: str) -> str:
    """The pseudonym epoch a day falls in: "2026", "2026-Q4" or "2026-11"."""
    if period == "year":
        return f"{day.year}"
    if period == "month":
        return f"{day.year}-{day.month:02d}"
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def consumer_view(rows: pa.Table, feed: Feed, policy: Policy, ctx: ViewContext) -> pa.Table:
    """The rows as `policy`'s consumer may receive them; Withheld or PublishBlocked otherwise."""
    if feed.consent:
        household = rows.column(feed.household_field or "")
        allowed = pa.array(sorted(ctx.consenting or ()), pa.string())
        rows = rows.filter(pc.fill_null(pc.is_in(household, value_set=allowed), False))
    rows = _on_their_basis(rows, feed, policy, ctx)
    grant = policy.feeds[feed.name]
    for name, values in grant.exclude.items():
        excluded = pc.is_in(rows.column(name), value_set=pa.array(values, pa.string()))
        rows = rows.filter(pc.invert(pc.fill_null(excluded, False)))
    k = policy.k_for(feed.name)
    columns: list[pa.Array] = []
    schema: list[pa.Field] = []
    recipient = ctx.recipients.get(policy.consumer)
    for name in policy.published_fields(feed):
        feed_field = feed.field(name)
        operator = policy.operator(feed.name, name)
        op_ctx = OperatorContext(
            policy.consumer, feed_field, ctx.keys, ctx.epoch, k, recipient, ctx.community, ctx.timezone, feed.name
        )
        column = rows.column(name).combine_chunks()
        if feed_field.privacy is PrivacyClass.DIRECT and operator.raw_input:
            column = _staged(rows, name, staging_column(name, operator, policy.consumer), column)
        elif operator.name == "seal_to" and recipient is None:
            raise Withheld("no encryption key registered (`neuron consumers add --encryption-key`)")
        else:
            column = operator.apply(column, op_ctx)
        out_type = operator.output_type(FEED_TYPES[feed_field.type])
        columns.append(column.cast(out_type))
        schema.append(pa.field(name, out_type))
    view = pa.Table.from_arrays(columns, schema=pa.schema(schema))
    aggregated = [n for n in view.column_names if policy.operator(feed.name, n).name == "aggregate"]
    if aggregated:
        totals = [(t.total, t.parts) for t in feed.totals]
        masks, _ = suppression_masks(rows, aggregated, totals, k)
        for name, mask in masks.items():
            i = view.column_names.index(name)
            column = view.column(name)
            view = view.set_column(i, name, pc.if_else(mask, pa.scalar(None, column.type), column))
    if feed.kind == "microdata" and grant.k:
        quasi = [n for n in view.column_names if feed.field(n).privacy is PrivacyClass.QUASI]
        check = check_k(view, quasi, grant.k)
        if not check.ok:
            raise PublishBlocked(f"feed {feed.name} for {policy.consumer}: {check.report()}")
    check_across_feeds(feed, policy, view)
    return view


def _on_their_basis(rows: pa.Table, feed: Feed, policy: Policy, ctx: ViewContext) -> pa.Table:
    """The rows without in-home rows (by category) that go on consent from a household that has
    not opted in to their function. Vital-interest categories keep every household's rows; a
    category without a stated basis counts as consent (the policy check refuses it anyway)."""
    in_home = feed.in_home
    if in_home is None or in_home.by is None or in_home.household_field is None or not rows.num_rows:
        return rows
    category = rows.column(in_home.by)
    household = rows.column(in_home.household_field)
    keep = pa.array([True] * rows.num_rows)
    for value in in_home.categories:
        if policy.feed_basis(feed.name, value) == "vital_interest":
            continue
        consenting = pa.array(sorted(ctx.consents.get(in_home.function_of(value) or "", ())), pa.string())
        this = pc.fill_null(pc.equal(category, value), False)
        opted_in = pc.fill_null(pc.is_in(household, value_set=consenting), False)
        keep = pc.and_(keep, pc.or_(pc.invert(this), opted_in))
    return rows.filter(keep)


def _staged(rows: pa.Table, name: str, staged: str, tokens: pa.Array) -> pa.Array:
    """The per-consumer staging column, complete, or Withheld saying what is missing."""
    if staged not in rows.column_names:
        raise Withheld(
            f"no {staged} column: the consumer's key (for seal_to: `neuron consumers add --encryption-key`) "
            "was not registered when these rows were de-identified; register it and re-run their windows"
        )
    column = rows.column(staged).combine_chunks()
    missing = pc.sum(pc.and_(pc.is_null(column), pc.is_valid(tokens))).as_py() or 0
    if missing:
        raise Withheld(f"{missing} row(s) have no {staged} value (de-identified before the key was registered)")
    return column
