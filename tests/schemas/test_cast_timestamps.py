"""A timestamp column that does not cast whole: Arrow still parses every well-formed value (with
fractions and any offset), Python only the rest, and a bad value is a failure of its row alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from schemas.contract import load_contract
from schemas.validate import cast_column

PASS_TIME = load_contract("vehicle_passes").field("pass_time")


def test_one_bad_value_fails_alone_and_the_rest_parse_as_python_reads_them() -> None:
    texts = [
        "2026-11-20T08:15:03+08:00",
        "2026-11-20T08:15:03.250001+08:00",  # fractions: Arrow's cast, not the seconds-only parse
        "2026-11-20 00:15:03Z",
        "2026-11-20T08:15:03.5",  # no offset: refused
        "2026-13-20T08:15:03+08:00",  # shaped, but a 13th month
        "yesterday",
        None,
    ]
    values, failed = cast_column(pa.array(texts, pa.string()), PASS_TIME)
    assert failed.to_pylist() == [False, False, False, True, True, True, False]
    expected = [datetime.fromisoformat(t).astimezone(UTC) for t in texts[:3] if t is not None]
    assert values.to_pylist()[:3] == expected
    assert values.to_pylist()[3:] == [None, None, None, None]
