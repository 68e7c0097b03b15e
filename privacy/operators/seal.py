"""`seal_to`: the value sealed to the consumer's own X25519 key (see privacy/seal.py).

On a direct identifier it runs at de-identification, the only time the raw value exists
outside the vault, into a staging column that only this consumer is ever given.
"""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from privacy.operators.base import Operator, OperatorContext, require_type
from privacy.seal import seal_column
from schemas.feeds import Feed, FeedField


class SealTo(Operator):
    """Seal each value to the consumer's registered encryption key."""

    name: ClassVar[str] = "seal_to"
    raw_input: ClassVar[bool] = True
    staging_suffix: ClassVar[str] = "sealed"
    identifying: ClassVar[bool] = True  # the consumer can open it: entitled re-identification

    def check(self, feed: Feed, field: FeedField) -> None:
        require_type(field, "string")

    def output_type(self, input_type: pa.DataType) -> pa.DataType:
        return pa.string()

    def apply(self, column: pa.Array, ctx: OperatorContext) -> pa.Array:
        if ctx.recipient is None:
            raise ValueError(f"consumer {ctx.consumer!r} has no encryption key registered")
        hub_key = ctx.require_keys().derive("seal", ctx.consumer)
        if not ctx.feed:
            raise ValueError(f"sealing field {ctx.field.name!r} needs the feed it is published in")
        return seal_column(column, ctx.recipient, hub_key, ctx.field.name, feed=ctx.feed)
