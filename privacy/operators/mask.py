"""`mask`: keep a few characters at the ends and hide the rest (沪A·***45, 138****5678).

Only characters of the value at the kept positions are ever shown. A value too short to
keep both ends and still hide something is hidden whole, and `width` hides the length
too (a new-energy plate then looks like any other). On a direct identifier it runs at
de-identification, because the warehouse keeps only tokens of those.
"""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa
from pydantic import Field

from privacy.operators.base import Operator, OperatorContext, map_unique, require_type
from schemas.feeds import Feed, FeedField


class Mask(Operator):
    """Show `keep_start` and `keep_end` characters, hide the middle with `char`."""

    name: ClassVar[str] = "mask"
    raw_input: ClassVar[bool] = True
    staging_suffix: ClassVar[str] = "masked"

    keep_start: int = Field(0, ge=0, le=8)
    keep_end: int = Field(0, ge=0, le=8)
    char: str = Field("*", min_length=1, max_length=1)
    width: int | None = Field(None, ge=1, le=32)  # hide the value's length behind a fixed width
    separator: str = Field("", max_length=2)  # e.g. "·" after a plate's province and letter

    def check(self, feed: Feed, field: FeedField) -> None:
        require_type(field, "string")

    def mask_value(self, value: str) -> str:
        """The masked form of one value."""
        hidden = len(value) - self.keep_start - self.keep_end
        if hidden < 1:  # nothing would be hidden: hide everything
            return self.char * (self.width or max(len(value), 1))
        end = value[len(value) - self.keep_end :] if self.keep_end else ""
        return value[: self.keep_start] + self.separator + self.char * (self.width or hidden) + end

    def apply(self, column: pa.Array, ctx: OperatorContext) -> pa.Array:
        return map_unique(column, self.mask_value, pa.string())
