"""`drop`: the field is not published (the same as not naming it, written out for the reader)."""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from privacy.operators.base import Operator, OperatorContext


class Drop(Operator):
    """Leave the field out; the publisher never asks it for a column."""

    name: ClassVar[str] = "drop"

    def apply(self, column: pa.Array, ctx: OperatorContext) -> pa.Array:
        raise TypeError("a dropped field has no output column")
