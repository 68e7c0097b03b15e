"""`pseudonymise`: the consumer's own keyed pseudonym, per epoch.

HMAC-SHA256 with a key derived (HKDF) from the master secret for this consumer and epoch,
over the value the mart holds (for a direct identifier, its staging token). The same
identifier is the same token for one consumer within an epoch, so its rows join; tokens
of two consumers, or of two epochs, share nothing, so they cannot be linked.
"""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from privacy.operators.base import Operator, OperatorContext, require_type
from privacy.pseudonymise import pseudonymise_column
from schemas.feeds import Feed, FeedField


def consumer_key(ctx: OperatorContext) -> bytes:
    """The pseudonym key of the context's consumer and epoch (derived, never stored)."""
    if not ctx.epoch:
        raise ValueError("pseudonyms need an epoch")
    return ctx.require_keys().derive("pseudonym", "consumer", ctx.consumer, ctx.epoch)


class Pseudonymise(Operator):
    """Replace each value by the consumer's token for it in this epoch."""

    name: ClassVar[str] = "pseudonymise"
    identifying: ClassVar[bool] = True  # a pseudonym still singles a person out (PIPL Art. 73(3))

    def check(self, feed: Feed, field: FeedField) -> None:
        require_type(field, "string")

    def output_type(self, input_type: pa.DataType) -> pa.DataType:
        return pa.string()

    def apply(self, column: pa.Array, ctx: OperatorContext) -> pa.Array:
        return pseudonymise_column(column, consumer_key(ctx))
