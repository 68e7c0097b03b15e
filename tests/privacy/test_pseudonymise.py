"""Keyed pseudonyms: deterministic per key, different across keys, nulls kept, vectorised = scalar."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from privacy.pseudonymise import pseudonym, pseudonymise_column

KEY_A, KEY_B = b"a" * 32, b"b" * 32


@given(st.lists(st.one_of(st.none(), st.text(max_size=12)), max_size=40))
def test_column_equals_value_by_value(values: list[str | None]) -> None:
    tokens = pseudonymise_column(pa.array(values, pa.string()), KEY_A).to_pylist()
    assert tokens == [None if v is None else pseudonym(KEY_A, v) for v in values]


@given(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=12))
def test_same_value_same_token_and_different_values_differ(a: str, b: str) -> None:
    assert pseudonym(KEY_A, a) == pseudonym(KEY_A, a)
    assert (pseudonym(KEY_A, a) == pseudonym(KEY_A, b)) == (a == b)


@given(st.text(min_size=1, max_size=12))
def test_other_key_other_token_and_no_trace_of_the_value(value: str) -> None:
    token = pseudonym(KEY_A, value)
    assert token != pseudonym(KEY_B, value)
    assert len(token) == 32
    assert value not in token or len(value) < 3  # hex can't spell a plate
