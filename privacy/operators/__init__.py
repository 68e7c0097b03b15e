"""The operators a sharing policy can name, by name (DESIGN.md, Sharing policies).

A policy field is either a bare name (`keep`) or a mapping with `op` and the operator's
parameters (`{op: generalise, to: hour}`); `parse_operator` turns either into a validated
operator, and an unknown name or a bad parameter is a ValueError saying which.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from privacy.operators.aggregate import Aggregate
from privacy.operators.base import Operator, OperatorContext, map_unique
from privacy.operators.drop import Drop
from privacy.operators.generalise import Generalise
from privacy.operators.keep import Keep
from privacy.operators.mask import Mask
from privacy.operators.pseudonymise import Pseudonymise
from privacy.operators.seal import SealTo

OPERATORS: dict[str, type[Operator]] = {
    cls.name: cls for cls in (Keep, Drop, Pseudonymise, Mask, Generalise, SealTo, Aggregate)
}

__all__ = ["OPERATORS", "Operator", "OperatorContext", "map_unique", "parse_operator"]


def parse_operator(spec: str | dict[str, Any]) -> Operator:
    """The operator a policy names, with its parameters validated."""
    if isinstance(spec, str):
        name, params = spec, {}
    elif isinstance(spec, dict) and isinstance(spec.get("op"), str):
        name, params = spec["op"], {k: v for k, v in spec.items() if k != "op"}
    else:
        raise ValueError("an operator is a name or a mapping with `op` and its parameters")
    if name not in OPERATORS:
        raise ValueError(f"unknown operator {name!r} (known: {', '.join(sorted(OPERATORS))})")
    try:
        return OPERATORS[name].model_validate(params)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or name}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"operator {name!r}: {problems}") from None
