"""What every operator shares: typed parameters, the context it runs in, and the
unique-values-then-map-back helper that vectorises per-value work over Arrow columns.

An operator is a small pydantic model (its parameters, validated when a policy loads)
with a `name` and `apply(column, ctx) -> column` (Presidio's shape, over whole columns).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict

from privacy.keys import HubKeys
from privacy.seal import Recipient
from schemas.contract import PrivacyClass
from schemas.feeds import Feed, FeedField


@dataclass(frozen=True)
class OperatorContext:
    """Where an operator runs: for which consumer, on which field, with which keys."""

    consumer: str
    field: FeedField
    keys: HubKeys | None = None
    epoch: str = ""
    k: int = 5
    recipient: Recipient | None = None
    community: str = ""
    timezone: str = "Asia/Shanghai"
    feed: str = ""  # the feed the value is published in (sealing binds it)

    def require_keys(self) -> HubKeys:
        """The hub's keys; operators that derive keys cannot run without them."""
        if self.keys is None:
            raise ValueError(f"operator on field {self.field.name!r} needs the hub's keys")
        return self.keys


class Operator(BaseModel):
    """Base of the operators: parameters as fields, behaviour as methods."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str]
    # On a direct identifier the warehouse holds only tokens: an operator that needs the raw
    # value runs at de-identification into a staging column `<field>_<suffix>_<consumer>`.
    raw_input: ClassVar[bool] = False
    staging_suffix: ClassVar[str] = ""
    # Whether what the operator outputs can single out a person (PIPL Art. 73's test).
    identifying: ClassVar[bool] = False

    def check(self, feed: Feed, field: FeedField) -> None:
        """Raise ValueError when the operator cannot apply to this field of this feed."""

    def output_type(self, input_type: pa.DataType) -> pa.DataType:
        """The Arrow type of the operator's output for an input of `input_type`."""
        return input_type

    def apply(self, column: pa.Array, ctx: OperatorContext) -> pa.Array:
        """The treated column (same length, nulls stay null unless stated)."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """How the catalog shows the treatment: the operator's name and its parameters."""
        return {"op": self.name, **self.model_dump(exclude_none=True)}

    def is_identifying(self, field: FeedField) -> bool:
        """Whether this field, so treated, can identify a person, alone or with other data."""
        return self.identifying or field.privacy in (PrivacyClass.DIRECT, PrivacyClass.FREE_TEXT)


def map_unique(column: pa.Array | pa.ChunkedArray, fn: Callable[[Any], Any], out_type: pa.DataType) -> pa.Array:
    """Apply `fn` once per distinct non-null value and map the results back (nulls stay null)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if len(column) == 0:
        return pa.array([], out_type)
    encoded = pc.dictionary_encode(column)
    results = pa.array([None if v is None else fn(v) for v in encoded.dictionary.to_pylist()], type=out_type)
    return pc.take(results, encoded.indices)


def require_type(field: FeedField, *types: str) -> None:
    """Raise ValueError unless the field has one of `types`."""
    if field.type not in types:
        raise ValueError(f"applies to {' or '.join(types)} fields, and {field.name!r} is {field.type}")
