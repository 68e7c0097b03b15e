"""`aggregate`: a count published under k-anonymity. Cells below k are suppressed (null),
and privacy/kanon.py adds the complementary suppression that keeps them unrecoverable from
the other counts of the feed; `apply` alone does the primary suppression of one column."""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from privacy.operators.base import Operator, OperatorContext
from schemas.feeds import Feed, FeedField


class Aggregate(Operator):
    """A count with small cells (1 … k-1) suppressed."""

    name: ClassVar[str] = "aggregate"

    def check(self, feed: Feed, field: FeedField) -> None:
        if feed.kind != "aggregate" or field.name not in feed.counts:
            raise ValueError(f"{field.name!r} is not a count of an aggregate feed")

    def apply(self, column: pa.Array, ctx: OperatorContext) -> pa.Array:
        small = pc.and_(pc.greater(column, 0), pc.less(column, ctx.k))
        return pc.if_else(small, pa.scalar(None, column.type), column)
