"""The warehouse's default treatment per privacy class (DESIGN.md, Contracts), and the
staging columns that entitled consumers need from raw values.

Direct identifiers become keyed pseudonyms; free text is scrubbed by the Chinese PII
recognisers; everything else is kept as is (quasi and sensitive fields are generalised or
aggregated later, at publish time, per consumer). This is the last moment the raw value
of a direct identifier exists outside the vault, so an operator that needs it for one
consumer (seal_to, mask, generalise) runs here, into `<field>_<treatment>_<consumer>`,
a column the publisher gives to that consumer only.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import pyarrow as pa

from privacy.keys import HubKeys
from privacy.operators import Operator, OperatorContext
from privacy.policy import Policy
from privacy.pseudonymise import pseudonymise_column
from privacy.scrub import scrub_column
from privacy.seal import Recipient
from schemas.contract import Contract, PrivacyClass
from schemas.feeds import Feed, FeedField


def staging_key(keys: HubKeys, identifier_kind: str) -> bytes:
    """The key of staging pseudonyms for one kind of identifier (hub-internal, never shared)."""
    return keys.derive("pseudonym", "staging", identifier_kind)


def staging_column(field: str, operator: Operator, consumer: str) -> str:
    """The staging (and mart) column holding `field` treated by `operator` for `consumer`."""
    return f"{field}_{operator.staging_suffix}_{consumer}"


@dataclass(frozen=True)
class StagingDerivation:
    """One column computed from a raw direct identifier for one consumer."""

    field: str
    column: str
    operator: Operator
    feed_field: FeedField
    consumer: str
    recipient: Recipient | None
    feed: str = ""  # the feed a sealed value is bound to (privacy.seal)


def staging_derivations(
    contract: Contract, feeds: dict[str, Feed], policies: dict[str, Policy], recipients: dict[str, Recipient]
) -> list[StagingDerivation]:
    """What the policies need from this stream's raw direct identifiers, one entry per column.

    A consumer entitled to a sealed value that has no encryption key registered gets no
    column: the publisher then withholds that feed from it and says why.
    """
    direct = {f.name for f in contract.direct_fields()}
    plan: dict[str, StagingDerivation] = {}
    for policy in sorted(policies.values(), key=lambda p: p.consumer):
        for feed_name in sorted(policy.feeds):
            feed = feeds.get(feed_name)
            if feed is None or contract.name not in feed.sources:
                continue
            for name in policy.published_fields(feed):
                operator = policy.operator(feed_name, name)
                if name not in direct or not operator.raw_input:
                    continue
                recipient = recipients.get(policy.consumer)
                if operator.name == "seal_to" and recipient is None:
                    continue
                column = staging_column(name, operator, policy.consumer)
                planned = plan.get(column)
                if planned is not None and operator.name == "seal_to" and planned.feed != feed_name:
                    # A sealed value is bound to one feed (HPKE info); one staging column cannot serve two.
                    raise ValueError(
                        f"policy {policy.consumer!r} seals field {name!r} in feeds {planned.feed!r} and "
                        f"{feed_name!r}; seal it in one feed only"
                    )
                plan[column] = StagingDerivation(
                    name, column, operator, feed.field(name), policy.consumer, recipient, feed_name
                )
    return [plan[c] for c in sorted(plan)]


def deidentify(
    contract: Contract,
    table: pa.Table,
    keys: HubKeys,
    derived: Sequence[StagingDerivation] = (),
    roster: Collection[str] = (),
    community: str = "",
) -> pa.Table:
    """A table of the contract's fields with every direct identifier replaced by its token,
    free text scrubbed, and the `derived` per-consumer columns appended.

    Works on typed good rows and on rejected raw-text rows alike (extra columns are kept).
    """
    extra = []
    for d in derived:
        if d.field in table.column_names:
            ctx = OperatorContext(
                d.consumer, d.feed_field, keys, recipient=d.recipient, community=community, feed=d.feed
            )
            extra.append((d.column, d.operator.apply(table.column(d.field).combine_chunks(), ctx)))
    for f in contract.fields:
        if f.name not in table.column_names:
            continue
        index = table.column_names.index(f.name)
        if f.privacy is PrivacyClass.DIRECT:
            tokens = pseudonymise_column(table.column(f.name), staging_key(keys, f.identifier_kind))
            table = table.set_column(index, f.staging_name, tokens)
        elif f.privacy is PrivacyClass.FREE_TEXT:
            table = table.set_column(index, f.name, scrub_column(table.column(f.name), roster))
    for name, column in extra:
        table = table.append_column(pa.field(name, column.type), column)
    return table
