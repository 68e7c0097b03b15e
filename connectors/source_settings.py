"""Finding a stream's source configuration on the hub's Settings.

Each connector family declares its own settings model (`SqlSource`, `FileDropSource`,
`IntercomSource`); the hub's `Settings` carries one field per configured source
(`platform`, `door_access`, `intercom`). Looking the field up by name keeps the
connector modules importable before a hub configures that source, and turns a missing
source into a clear configuration error instead of an AttributeError deep in a task.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from neuron.errors import ConfigError

SourceT = TypeVar("SourceT", bound=BaseModel)


def source_of(settings: Any, field: str, model: type[SourceT]) -> SourceT:
    """The `field` source of the hub's settings, which must be a `model`."""
    value = getattr(settings, field, None)
    if isinstance(value, model):
        return value
    if isinstance(value, dict):
        return model.model_validate(value)
    raise ConfigError(f"the hub has no [{field}] source configured ({model.__name__})")
