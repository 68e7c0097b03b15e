"""A stream's contract, declared once in YAML (schemas/contracts/*.yaml).

A community admin can read the YAML; the code derives from it the Arrow schema of the
raw stream, the staging schema (direct identifiers replaced by tokens), the Great
Expectations suite, and the data dictionary.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kernel.errors import ConfigError

CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
# A raw batch carries the fields its contract names plus this one: the names of any fields a
# source sent that the contract does not know (kept for the quality report, never loaded).
EXTRA_COLUMN = "_extra"
# ...and this one: why the source record as a whole could not be read (a payload that is not
# JSON, a row that is not an object, a value that is not text), None for a readable record.
# Older landed batches lack it; validation treats a missing column as all None.
PROBLEM_COLUMN = "_problem"


class PrivacyClass(StrEnum):
    """How identifying a field is; it decides the field's treatment (DESIGN.md, Contracts)."""

    DIRECT = "direct"
    QUASI = "quasi"
    SENSITIVE = "sensitive"
    FREE_TEXT = "free_text"
    PUBLIC = "public"


FieldType = Literal["string", "int64", "float64", "bool", "timestamp"]

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


class Checks(BaseModel):
    """Row-level checks on one field's values; each becomes an expectation."""

    pattern: str | None = None
    allowed: list[str] | None = None
    min: float | None = None
    max: float | None = None


class Description(BaseModel):
    zh: str
    en: str


class ContractField(BaseModel):
    """One field of a stream."""

    name: str
    type: FieldType
    nullable: bool = True
    privacy: PrivacyClass
    unit: str | None = None
    description: Description
    checks: Checks = Checks()
    # The kind of identifier a direct field holds (plate, resident, household, phone...).
    # Fields of one kind share a pseudonym key, so tokens join across streams even when
    # the sources name the field differently. Defaults to the field's name.
    identifier: str | None = None

    @property
    def identifier_kind(self) -> str:
        return self.identifier or self.name

    @property
    def arrow_type(self) -> pa.DataType:
        return ARROW_TYPES[self.type]

    @property
    def staging_name(self) -> str:
        """Direct identifiers are kept in staging only as keyed pseudonyms."""
        return f"{self.name}_token" if self.privacy is PrivacyClass.DIRECT else self.name


class SourceSpec(BaseModel):
    """How the hub reads a stream: its connector family (connectors/families.py), when its
    ingest runs, and the family's one parameter. Declared in the contract, nowhere else."""

    model_config = ConfigDict(extra="forbid")

    family: Literal["parking_api", "intercom_api", "platform_sql", "mqtt", "door_access_drop", "relay_lifecycle"]
    schedule: str  # cron, in the hub's timezone
    title: str  # what the stream is and where it comes from (the ingest DAG's title)
    path: str | None = None  # parking_api: the vendor endpoint
    resource: str | None = None  # intercom_api: the vendor's resource
    table: str | None = None  # platform_sql: the platform's table

    @model_validator(mode="after")
    def _family_has_its_parameter(self) -> SourceSpec:
        needed = {"parking_api": "path", "intercom_api": "resource", "platform_sql": "table"}.get(self.family)
        if needed and not getattr(self, needed):
            raise ValueError(f"the {self.family} family needs `{needed}`")
        return self


class Contract(BaseModel):
    """The declared contract of one stream."""

    name: str
    version: int
    system: int = Field(ge=1, le=9)
    title: Description
    primary_key: list[str]
    cursor_field: str
    event_time: str
    evolution: Literal["evolve", "freeze"] = "freeze"
    failure_budget: float | None = Field(None, ge=0, le=1)
    # The optional function (system 6) whose consent covers this stream: a household's
    # withdrawal purges its rows from the stream's raw-vault objects.
    consent: Literal["smoke_gas", "elderly_care"] | None = None
    # How the hub reads the stream; every contract file under contracts/ has one (the registry
    # refuses one without), contracts built in code for a single check need none.
    source: SourceSpec | None = None
    fields: list[ContractField]

    @model_validator(mode="after")
    def _keys_are_fields(self) -> Contract:
        names = {f.name for f in self.fields}
        for key in [*self.primary_key, self.cursor_field, self.event_time]:
            if key not in names:
                raise ValueError(f"{key!r} is named as a key but is not a field")
        return self

    def field(self, name: str) -> ContractField:
        """The field called `name`."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def arrow_schema(self) -> pa.Schema:
        """The stream's schema as the source sends it, typed."""
        return pa.schema([pa.field(f.name, f.arrow_type, nullable=f.nullable) for f in self.fields])

    def staging_schema(self) -> pa.Schema:
        """The de-identified schema kept in the warehouse."""
        cols = [
            pa.field(f.staging_name, pa.string() if f.privacy is PrivacyClass.DIRECT else f.arrow_type)
            for f in self.fields
        ]
        return pa.schema([*cols, pa.field("_batch_id", pa.string(), nullable=False)])

    def direct_fields(self) -> list[ContractField]:
        return [f for f in self.fields if f.privacy is PrivacyClass.DIRECT]

    def expectations(self) -> list[dict[str, Any]]:
        """The contract's checks as Great Expectations configurations (type + kwargs)."""
        out: list[dict[str, Any]] = []
        for f in self.fields:
            if not f.nullable:
                out.append({"type": "expect_column_values_to_not_be_null", "column": f.name})
            if f.checks.pattern is not None:
                out.append(
                    {
                        "type": "expect_column_values_to_match_regex",
                        "column": f.name,
                        "regex": f.checks.pattern,
                    }
                )
            if f.checks.allowed is not None:
                out.append(
                    {
                        "type": "expect_column_values_to_be_in_set",
                        "column": f.name,
                        "value_set": f.checks.allowed,
                    }
                )
            if f.checks.min is not None or f.checks.max is not None:
                out.append(
                    {
                        "type": "expect_column_values_to_be_between",
                        "column": f.name,
                        "min_value": f.checks.min,
                        "max_value": f.checks.max,
                    }
                )
        if len(self.primary_key) == 1:
            out.append({"type": "expect_column_values_to_be_unique", "column": self.primary_key[0]})
        else:
            out.append({"type": "expect_compound_columns_to_be_unique", "column_list": self.primary_key})
        return out


@cache
def load_contract(name: str) -> Contract:
    """The contract of stream `name`, read from schemas/contracts/NAME.yaml."""
    path = CONTRACTS_DIR / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"no contract for stream {name!r} ({path})")
    try:
        return Contract.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
