"""Sealed values open only with the consumer's private key, and seal the same way every time."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.errors import IntegrityError
from privacy.seal import Recipient, open_sealed, seal, seal_column, sealed_key_id

HUB_KEY = b"h" * 32
PASSES = {"feed": "traffic.vehicle_passes"}
OPEN = {"consumer": "public_security", **PASSES}
POLICE = X25519PrivateKey.generate()
OTHER = X25519PrivateKey.generate()
TO_POLICE = Recipient("public_security", "public_security-enc-1", POLICE.public_key())
TO_OTHER = Recipient("district", "district-enc-1", OTHER.public_key())


@settings(max_examples=50)
@given(st.text(min_size=1, max_size=30))
def test_a_sealed_value_opens_with_the_consumers_key_and_no_other(value: str) -> None:
    sealed = seal(value, TO_POLICE, HUB_KEY, "plate_no", **PASSES)
    assert open_sealed(sealed, POLICE, "plate_no", **OPEN) == value
    assert sealed_key_id(sealed) == TO_POLICE.key_id
    assert value not in sealed.split(".", 2)[2] or len(value) < 4
    with pytest.raises(IntegrityError):
        open_sealed(sealed, OTHER, "plate_no", **OPEN)  # another consumer's private key
    with pytest.raises(IntegrityError):
        open_sealed(sealed, POLICE, "phone", **OPEN)  # passed off as another kind of identifier
    with pytest.raises(IntegrityError):
        open_sealed(sealed, X25519PrivateKey.generate(), "plate_no", **OPEN)  # the hub cannot open it either


@settings(max_examples=50)
@given(st.text(min_size=1, max_size=30), st.integers(0, 200))
def test_tampering_with_any_byte_is_detected(value: str, position: int) -> None:
    prefix, kid, body = seal(value, TO_POLICE, HUB_KEY, "plate_no", **PASSES).split(".", 2)
    i = position % len(body)
    flipped = body[:i] + ("A" if body[i] != "A" else "B") + body[i + 1 :]
    with pytest.raises(IntegrityError):
        assert open_sealed(f"{prefix}.{kid}.{flipped}", POLICE, "plate_no", **OPEN) != value


def test_sealing_is_deterministic_per_recipient_so_re_runs_give_the_same_bytes() -> None:
    import pyarrow as pa

    column = pa.array(["沪A12345", None, "沪A12345", "苏E9F123"])
    first = seal_column(column, TO_POLICE, HUB_KEY, "plate_no", **PASSES).to_pylist()
    assert first == seal_column(column, TO_POLICE, HUB_KEY, "plate_no", **PASSES).to_pylist()
    assert first[0] == first[2] and first[1] is None and first[0] != first[3]
    to_other = seal_column(column, TO_OTHER, HUB_KEY, "plate_no", **PASSES).to_pylist()
    assert not set(first) - {None} & set(to_other)
    assert [open_sealed(v, POLICE, "plate_no", **OPEN) for v in first if v] == ["沪A12345", "沪A12345", "苏E9F123"]


@pytest.mark.parametrize(
    "garbage",
    ["", "nhs2", "nhs2.k", "nhs2.k.", "nhs2.k.AAAA", "nhs2.k.!!!!", "nhs2.k." + "A" * 64, "nhs1.k." + "A" * 86],
)
def test_what_is_not_a_sealed_value_says_so(garbage: str) -> None:
    with pytest.raises(IntegrityError):
        open_sealed(garbage, POLICE, "plate_no", **OPEN)


def test_the_consumer_feed_and_field_are_bound() -> None:
    sealed = seal("沪A12345", TO_POLICE, HUB_KEY, "plate_no", **PASSES)
    for consumer, feed, field in [
        ("district", "traffic.vehicle_passes", "plate_no"),
        ("public_security", "traffic.vehicle_flow_hourly", "plate_no"),
        ("public_security", "traffic.vehicle_passes", "gate_code"),
    ]:
        with pytest.raises(IntegrityError):
            open_sealed(sealed, POLICE, field, consumer=consumer, feed=feed)


def test_any_rfc_9180_implementation_opens_a_sealed_value_with_the_documented_info() -> None:
    from cryptography.hazmat.primitives import hpke

    from privacy.keys import b64u_decode

    sealed = seal("沪A12345", TO_POLICE, HUB_KEY, "plate_no", **PASSES)
    prefix, key_id, body = sealed.split(".", 2)
    info = f"neuron-hub/seal/v2\x1fpublic_security\x1ftraffic.vehicle_passes\x1fplate_no\x1f{key_id}".encode()
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
    assert prefix == "nhs2" and suite.decrypt(b64u_decode(body), POLICE, info=info).decode() == "沪A12345"


def test_a_remembered_seal_is_the_fresh_seal_and_a_new_key_is_never_served_an_old_one() -> None:
    import pyarrow as pa

    from privacy import seal as sealing

    sealing._remembered_seal.cache_clear()
    column = pa.array(["沪A12345", "沪A12345", None, "沪B54321"], pa.string())
    fresh = [None if v is None else seal(v, TO_POLICE, HUB_KEY, "plate_no", **PASSES) for v in column.to_pylist()]
    assert seal_column(column, TO_POLICE, HUB_KEY, "plate_no", **PASSES).to_pylist() == fresh
    assert seal_column(column, TO_POLICE, HUB_KEY, "plate_no", **PASSES).to_pylist() == fresh  # from memory
    assert sealing._remembered_seal.cache_info().hits >= 2
    rotated = X25519PrivateKey.generate()  # the same key id, another key: sealed anew, opens with it
    again = seal_column(
        column, Recipient(TO_POLICE.consumer, TO_POLICE.key_id, rotated.public_key()), HUB_KEY, "plate_no", **PASSES
    ).to_pylist()
    assert again[0] != fresh[0] and open_sealed(again[0], rotated, "plate_no", **OPEN) == "沪A12345"
