"""Sealed values open only with the consumer's private key, and seal the same way every time."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.errors import IntegrityError
from privacy.seal import Recipient, open_sealed, seal, seal_column, sealed_key_id

HUB_KEY = b"h" * 32
POLICE = X25519PrivateKey.generate()
OTHER = X25519PrivateKey.generate()
TO_POLICE = Recipient("public_security", "public_security-enc-1", POLICE.public_key())
TO_OTHER = Recipient("district", "district-enc-1", OTHER.public_key())


@settings(max_examples=50)
@given(st.text(min_size=1, max_size=30))
def test_a_sealed_value_opens_with_the_consumers_key_and_no_other(value: str) -> None:
    sealed = seal(value, TO_POLICE, HUB_KEY, "plate_no")
    assert open_sealed(sealed, POLICE, "plate_no") == value
    assert sealed_key_id(sealed) == TO_POLICE.key_id
    assert value not in sealed.split(".", 2)[2] or len(value) < 4
    with pytest.raises(IntegrityError):
        open_sealed(sealed, OTHER, "plate_no")  # another consumer's private key
    with pytest.raises(IntegrityError):
        open_sealed(sealed, POLICE, "phone")  # passed off as another kind of identifier
    with pytest.raises(IntegrityError):
        open_sealed(sealed, X25519PrivateKey.generate(), "plate_no")  # the hub cannot open it either


@settings(max_examples=50)
@given(st.text(min_size=1, max_size=30), st.integers(0, 200))
def test_tampering_with_any_byte_is_detected(value: str, position: int) -> None:
    prefix, kid, body = seal(value, TO_POLICE, HUB_KEY, "plate_no").split(".", 2)
    i = position % len(body)
    flipped = body[:i] + ("A" if body[i] != "A" else "B") + body[i + 1 :]
    with pytest.raises(IntegrityError):
        assert open_sealed(f"{prefix}.{kid}.{flipped}", POLICE, "plate_no") != value


def test_sealing_is_deterministic_per_recipient_so_re_runs_give_the_same_bytes() -> None:
    import pyarrow as pa

    column = pa.array(["沪A12345", None, "沪A12345", "苏E9F123"])
    first = seal_column(column, TO_POLICE, HUB_KEY, "plate_no").to_pylist()
    assert first == seal_column(column, TO_POLICE, HUB_KEY, "plate_no").to_pylist()
    assert first[0] == first[2] and first[1] is None and first[0] != first[3]
    to_other = seal_column(column, TO_OTHER, HUB_KEY, "plate_no").to_pylist()
    assert not set(first) - {None} & set(to_other)
    assert [open_sealed(v, POLICE, "plate_no") for v in first if v] == ["沪A12345", "沪A12345", "苏E9F123"]


@pytest.mark.parametrize(
    "garbage", ["", "nhs1", "nhs1.k", "nhs1.k.", "nhs2.k.AAAA", "nhs1.k.!!!!", "nhs1.k." + "A" * 43]
)
def test_what_is_not_a_sealed_value_says_so(garbage: str) -> None:
    with pytest.raises(IntegrityError):
        open_sealed(garbage, POLICE, "plate_no")
