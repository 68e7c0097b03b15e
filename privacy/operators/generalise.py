"""`generalise`: a coarser value that contains the true one — time to hour, day or month,
age to bands, a room address to its unit, building or community.

Each output is a function of a coarser key only (the truncated time, the band, the
address prefix), so it never says more than that key; a value that does not parse is
suppressed (null) rather than passed on. On a direct identifier (a room address) it runs
at de-identification, because the warehouse keeps only tokens of those.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import ClassVar, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import model_validator

from privacy.operators.base import Operator, OperatorContext, map_unique, require_type
from schemas.feeds import Feed, FeedField

TIME_UNITS = {"hour": "hour", "day": "day", "month": "month"}
LOCATION = {"unit", "building", "community"}
_ADDRESS = re.compile(r"^\s*(\d{1,3})\s*(?:号楼|号|栋|幢)(?:\s*(\d{1,2})\s*单元)?")


def band_label(value: int, bands: list[int]) -> str:
    """The label of the band holding `value`: "<18", "18-34", "75+"."""
    if value < bands[0]:
        return f"<{bands[0]}"
    for low, high in pairwise(bands):
        if low <= value < high:
            return f"{low}-{high - 1}"
    return f"{bands[-1]}+"


class Generalise(Operator):
    """Replace a value by the coarser class that holds it."""

    name: ClassVar[str] = "generalise"
    raw_input: ClassVar[bool] = True
    staging_suffix: ClassVar[str] = "generalised"

    to: Literal["hour", "day", "month", "unit", "building", "community"] | None = None
    bands: list[int] | None = None  # ascending lower bounds, e.g. [18, 35, 60, 75]

    @model_validator(mode="after")
    def _one_kind(self) -> Generalise:
        if (self.to is None) == (self.bands is None):
            raise ValueError("give exactly one of `to` and `bands`")
        if self.bands is not None and (not self.bands or self.bands != sorted(set(self.bands))):
            raise ValueError("bands must be strictly ascending")
        return self

    def check(self, feed: Feed, field: FeedField) -> None:
        if self.bands is not None:
            require_type(field, "int64")
        elif self.to in LOCATION:
            require_type(field, "string")
        elif self.to == "month":
            require_type(field, "timestamp", "date")
        else:
            require_type(field, "timestamp")

    def output_type(self, input_type: pa.DataType) -> pa.DataType:
        return pa.string() if self.bands is not None else input_type

    def apply(self, column: pa.Array, ctx: OperatorContext) -> pa.Array:
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if self.bands is not None:
            bands = self.bands
            return map_unique(column, lambda v: band_label(int(v), bands), pa.string())
        if self.to in LOCATION:
            return map_unique(column, lambda v: self._place(str(v), ctx), pa.string())
        if pa.types.is_date(column.type):
            return pc.floor_temporal(column, unit="month")
        # Days and months begin at local midnight, not UTC's.
        local = column.cast(pa.timestamp(column.type.unit, tz=ctx.timezone))
        floored = pc.floor_temporal(local, unit=TIME_UNITS[self.to or "hour"])
        return floored.cast(column.type)

    def _place(self, address: str, ctx: OperatorContext) -> str | None:
        if self.to == "community":
            return ctx.community or None
        match = _ADDRESS.match(address)
        if match is None:
            return None
        building, unit = match.groups()
        if self.to == "building":
            return f"{int(building)}号楼"
        return f"{int(building)}号楼{int(unit)}单元" if unit else None
