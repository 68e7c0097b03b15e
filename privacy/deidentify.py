"""The warehouse's default treatment per privacy class (DESIGN.md, Contracts).

Direct identifiers become keyed pseudonyms; free text is withheld until the Chinese PII
scrubbers exist; everything else is kept as is (quasi and sensitive fields are
generalised or aggregated later, at publish time, per consumer).
"""

from __future__ import annotations

import pyarrow as pa

from privacy.keys import HubKeys
from privacy.pseudonymise import pseudonymise_column
from schemas.contract import Contract, PrivacyClass


def staging_key(keys: HubKeys, identifier_kind: str) -> bytes:
    """The key of staging pseudonyms for one kind of identifier (hub-internal, never shared)."""
    return keys.derive("pseudonym", "staging", identifier_kind)


def deidentify(contract: Contract, table: pa.Table, keys: HubKeys) -> pa.Table:
    """A table of the contract's fields with every direct identifier replaced by its token.

    Works on typed good rows and on rejected raw-text rows alike (extra columns are kept).
    """
    for f in contract.fields:
        if f.name not in table.column_names:
            continue
        index = table.column_names.index(f.name)
        if f.privacy is PrivacyClass.DIRECT:
            tokens = pseudonymise_column(table.column(f.name), staging_key(keys, f.identifier_kind))
            table = table.set_column(index, f.staging_name, tokens)
        elif f.privacy is PrivacyClass.FREE_TEXT:
            # No scrubber yet: withholding the text is the only safe treatment.
            table = table.set_column(index, f.name, pa.nulls(table.num_rows, table.schema.field(f.name).type))
    return table
