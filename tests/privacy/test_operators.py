"""The operators: a table of cases each, and properties — pseudonyms deterministic within a
consumer and epoch and different across them; masking and generalisation never widen what
is revealed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.keys import HubKeys
from privacy.operators import OPERATORS, OperatorContext, parse_operator
from privacy.operators.generalise import band_label
from privacy.operators.mask import Mask
from schemas.contract import Description, PrivacyClass
from schemas.feeds import FeedField

KEYS = HubKeys(b"k" * 32, [])
TEXT = FeedField(name="plate_no", type="string", privacy=PrivacyClass.DIRECT, description=Description(zh="", en=""))
TIME = FeedField(name="pass_time", type="timestamp", privacy=PrivacyClass.QUASI, description=Description(zh="", en=""))
AGE = FeedField(name="age", type="int64", privacy=PrivacyClass.QUASI, description=Description(zh="", en=""))


def ctx(consumer: str = "district", epoch: str = "2026-Q4", field: FeedField = TEXT) -> OperatorContext:
    return OperatorContext(consumer, field, KEYS, epoch, community="音乐广场")


def run(spec: str | dict[str, object], values: list[object], field: FeedField = TEXT, **kw: str) -> list[object]:
    type_ = {"string": pa.string(), "timestamp": pa.timestamp("us", tz="UTC"), "int64": pa.int64()}[field.type]
    return parse_operator(spec).apply(pa.array(values, type_), ctx(field=field, **kw)).to_pylist()


def test_the_registry_names_every_operator_of_the_design() -> None:
    assert set(OPERATORS) == {"keep", "drop", "pseudonymise", "mask", "generalise", "seal_to", "aggregate"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("shred", "unknown operator 'shred'"),  # not an operator
        ({"op": "mask", "keep_start": -1}, "keep_start"),  # a negative count
        ({"op": "mask", "colour": "red"}, "colour"),  # a parameter mask does not have
        ({"op": "generalise"}, "exactly one"),  # neither `to` nor `bands`
        ({"op": "generalise", "to": "hour", "bands": [18]}, "exactly one"),  # both
        ({"op": "generalise", "bands": [60, 18]}, "ascending"),  # unsorted bands
        ({"op": "generalise", "to": "street"}, "to"),  # not a level
        (["keep"], "name or a mapping"),  # not a name nor a mapping
    ],
)
def test_bad_operators_are_refused_with_the_reason(spec: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_operator(spec)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("params", "value", "masked"),
    [
        ({"keep_start": 2, "keep_end": 2, "width": 3, "separator": "·"}, "沪A12345", "沪A·***45"),  # a blue plate
        (
            {"keep_start": 2, "keep_end": 2, "width": 3, "separator": "·"},
            "沪AD12345",
            "沪A·***45",
        ),  # green: length hidden
        ({"keep_start": 3, "keep_end": 4}, "13812345678", "138****5678"),  # a mobile number
        ({"keep_start": 3, "keep_end": 4}, "1381234", "*******"),  # too short to hide anything: all hidden
        ({"keep_end": 4, "char": "#"}, "6222021234567890", "############7890"),  # a card's last four
        ({}, "abc", "***"),  # nothing kept
    ],
)
def test_mask_cases(params: dict[str, object], value: str, masked: str) -> None:
    assert run({"op": "mask", **params}, [value, None]) == [masked, None]


@given(
    st.text(st.characters(blacklist_characters="\x00"), max_size=20),
    st.integers(0, 8),
    st.integers(0, 8),
    st.one_of(st.none(), st.integers(1, 10)),
)
def test_masking_never_reveals_more_than_the_kept_ends(value: str, start: int, end: int, width: int | None) -> None:
    mask = Mask(keep_start=start, keep_end=end, width=width, char="\x00")
    out = mask.mask_value(value)
    shown = out.replace("\x00", "")
    if len(value) <= start + end:
        assert shown == ""  # nothing would be hidden: nothing is shown
    else:
        assert shown == value[:start] + (value[len(value) - end :] if end else "")
        # Any value with the same ends (and, without a fixed width, the same length) masks alike.
        twin = value[:start] + "z" * (len(value) - start - end) + (value[len(value) - end :] if end else "")
        assert mask.mask_value(twin) == out
    # Masking the masked value shows nothing new.
    assert set(mask.mask_value(out).replace("\x00", "")) <= set(shown)


@given(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=12))
def test_pseudonyms_are_deterministic_within_consumer_and_epoch_and_differ_across(a: str, b: str) -> None:
    values = [a, b, a, None]
    first = run("pseudonymise", values)
    assert first == run("pseudonymise", values)  # the same consumer, the same epoch
    assert first[0] == first[2] and first[3] is None
    assert (first[0] == first[1]) == (a == b)
    other_consumer = run("pseudonymise", values, consumer="public_security")
    other_epoch = run("pseudonymise", values, epoch="2027-Q1")
    assert not set(first[:3]) & set(other_consumer[:3])  # unlinkable across consumers
    assert not set(first[:3]) & set(other_epoch[:3])  # and across epochs


def test_pseudonymise_without_an_epoch_is_refused() -> None:
    with pytest.raises(ValueError, match="epoch"):
        run("pseudonymise", ["x"], epoch="")


instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC))


@settings(max_examples=200)
@given(instants)
def test_generalised_times_contain_the_true_time_and_never_get_finer(instant: datetime) -> None:
    hour, day, month = (run({"op": "generalise", "to": u}, [instant], TIME)[0] for u in ("hour", "day", "month"))
    assert isinstance(hour, datetime) and isinstance(day, datetime) and isinstance(month, datetime)
    assert hour <= instant < hour + timedelta(hours=1)
    assert day <= hour and instant - day < timedelta(days=1)
    assert month <= day and instant - month < timedelta(days=31)
    # Generalising again, or generalising the hour to a day, gives nothing finer.
    assert run({"op": "generalise", "to": "hour"}, [hour], TIME)[0] == hour
    assert run({"op": "generalise", "to": "day"}, [hour], TIME)[0] == day
    local = day.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    assert (local.hour, local.minute) == (0, 0)  # days begin at Shanghai's midnight


@given(st.integers(0, 120))
def test_age_bands_hold_the_age(age: int) -> None:
    bands = [18, 35, 60, 75]
    label = run({"op": "generalise", "bands": bands}, [age], AGE)[0]
    assert label == band_label(age, bands)
    if label.startswith("<"):
        assert age < int(label[1:])
    elif label.endswith("+"):
        assert age >= int(label[:-1])
    else:
        low, high = map(int, label.split("-"))
        assert low <= age <= high


@pytest.mark.parametrize(
    ("to", "address", "place"),
    [
        ("building", "3号楼2单元302室", "3号楼"),
        ("unit", "3号楼2单元302室", "3号楼2单元"),
        ("building", "12号502室", "12号楼"),  # the short form residents write
        ("unit", "12号502室", None),  # no unit in it: suppressed, not guessed
        ("community", "3号楼2单元302室", "音乐广场"),
        ("building", "南门岗亭", None),  # not an address: suppressed
    ],
)
def test_location_generalises_to_a_prefix_of_the_address(to: str, address: str, place: str | None) -> None:
    assert run({"op": "generalise", "to": to}, [address]) == [place]


def test_aggregate_suppresses_counts_between_one_and_k_minus_one() -> None:
    assert run("aggregate", [0, 1, 4, 5, 40, None], AGE) == [0, None, None, 5, 40, None]


def test_operators_check_the_field_they_are_given() -> None:
    from schemas.feeds import load_feeds

    passes = load_feeds()["traffic.vehicle_passes"]
    with pytest.raises(ValueError, match="direct identifier"):
        parse_operator("keep").check(passes, passes.field("plate_no"))
    with pytest.raises(ValueError, match="timestamp"):
        parse_operator({"op": "generalise", "to": "hour"}).check(passes, passes.field("gate_code"))
    with pytest.raises(ValueError, match="not a count"):
        parse_operator("aggregate").check(passes, passes.field("gate_code"))
    parse_operator("seal_to").check(passes, passes.field("plate_no"))  # fits: no error
