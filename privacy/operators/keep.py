"""`keep`: the field as the mart has it. Never for a direct identifier: the mart holds the
hub's internal staging token there, which would link the consumer's data to every other's."""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from privacy.operators.base import Operator, OperatorContext
from schemas.contract import PrivacyClass
from schemas.feeds import Feed, FeedField


class Keep(Operator):
    """Pass the column on unchanged."""

    name: ClassVar[str] = "keep"

    def check(self, feed: Feed, field: FeedField) -> None:
        if field.privacy is PrivacyClass.DIRECT:
            raise ValueError(
                f"{field.name!r} is a direct identifier: use pseudonymise, seal_to, mask or drop, never keep"
            )

    def apply(self, column: pa.Array, ctx: OperatorContext) -> pa.Array:
        return column
