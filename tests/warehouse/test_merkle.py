"""The ballot Merkle tree: receipts, leaves, roots and inclusion proofs (warehouse.merkle).

Expected digests are written out from docs/votes.md with hashlib alone; properties (every
leaf proves, nothing altered does) are checked over many tree sizes with hypothesis.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warehouse.merkle import (
    InclusionProof,
    Step,
    ballot_leaf,
    format_receipt,
    inclusion_proof,
    lookup_tag,
    merkle_root,
    new_receipt,
    normalise_receipt,
    receipt_commitment,
    verify_ballot,
    verify_inclusion,
)

RECEIPT = "3f9a-0c1d-7e22-9b4f-a0b1-c2d3-e4f5-0617"


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def test_receipt_commitment_tag_and_leaf_are_the_documented_bytes() -> None:
    digits = "3f9a0c1d7e229b4fa0b1c2d3e4f50617"
    commitment = h(b"neuron-hub/ballot-receipt/v1:" + digits.encode()).hex()
    assert receipt_commitment(RECEIPT) == receipt_commitment(digits.upper()) == commitment
    assert lookup_tag(commitment) == h(b"neuron-hub/ballot-lookup/v1:" + commitment.encode()).hex()
    body = b"neuron-hub/ballot-leaf/v1" + b"12:music-square," + b"8:M2026-01," + b"64:" + commitment.encode()
    body += b"," + b"5:agree," + b"4:8525,"
    assert ballot_leaf("music-square", "M2026-01", commitment, "agree", 85.25) == h(b"\x00" + body).hex()


def test_a_community_name_in_chinese_is_counted_in_bytes() -> None:
    commitment = receipt_commitment(RECEIPT)
    body = "neuron-hub/ballot-leaf/v1" + "12:音乐广场," + "2:M1," + f"64:{commitment}," + "6:oppose," + "4:6000,"
    assert ballot_leaf("音乐广场", "M1", commitment, "oppose", 60.0) == h(b"\x00" + body.encode()).hex()


def test_roots_of_small_trees_written_out() -> None:
    a, b, c, d, e = sorted(h(bytes([i])).hex() for i in range(5))

    def node(x: str, y: str) -> str:
        return h(b"\x01" + bytes.fromhex(x) + bytes.fromhex(y)).hex()

    assert merkle_root([a]) == a
    assert merkle_root([b, a]) == node(a, b)  # sorted first
    assert merkle_root([c, a, b]) == node(node(a, b), c)  # the odd one goes up alone
    assert merkle_root([e, d, c, b, a]) == node(node(node(a, b), node(c, d)), e)


def test_receipts_are_normalised_and_checked() -> None:
    assert normalise_receipt(" 3F9A 0C1D-7E22-9b4f-a0b1-c2d3-e4f5-0617 ") == "3f9a0c1d7e229b4fa0b1c2d3e4f50617"
    assert format_receipt("3f9a0c1d7e229b4fa0b1c2d3e4f50617") == RECEIPT
    assert normalise_receipt(new_receipt()) != normalise_receipt(new_receipt())
    for bad in ["", "3f9a", RECEIPT + "0", RECEIPT.replace("f", "g"), "../../etc/passwd"]:
        with pytest.raises(ValueError):
            normalise_receipt(bad)
    with pytest.raises(ValueError):
        merkle_root([])


leaf_sets = st.lists(st.binary(min_size=1, max_size=8), min_size=1, max_size=40, unique=True).map(
    lambda items: [h(x).hex() for x in items]
)


@settings(max_examples=150, deadline=None)
@given(leaves=leaf_sets)
def test_every_leaf_proves_against_the_root(leaves: list[str]) -> None:
    root = merkle_root(leaves)
    for leaf in leaves:
        proof = inclusion_proof(leaves, leaf)
        assert verify_inclusion(proof, root)
        assert verify_inclusion(InclusionProof.from_dict(proof.as_dict()), root)


@settings(max_examples=150, deadline=None)
@given(leaves=leaf_sets, data=st.data())
def test_an_altered_proof_or_leaf_fails(leaves: list[str], data: st.DataObject) -> None:
    root = merkle_root(leaves)
    proof = inclusion_proof(leaves, data.draw(st.sampled_from(leaves)))
    byte = data.draw(st.integers(0, 31))
    flip = data.draw(st.integers(1, 255))

    def altered(digest: str) -> str:
        raw = bytearray(bytes.fromhex(digest))
        raw[byte] ^= flip
        return raw.hex()

    assert not verify_inclusion(InclusionProof(altered(proof.leaf), *_rest(proof)), root)
    assert not verify_inclusion(proof, altered(root))
    if proof.path:
        i = data.draw(st.integers(0, len(proof.path) - 1))
        path = list(proof.path)
        path[i] = Step(path[i].side, altered(path[i].hash))
        assert not verify_inclusion(InclusionProof(proof.leaf, proof.leaf_index, proof.leaf_count, tuple(path)), root)
        swapped = tuple(Step("left" if s.side == "right" else "right", s.hash) for s in proof.path)
        assert not verify_inclusion(InclusionProof(proof.leaf, proof.leaf_index, proof.leaf_count, swapped), root)
    # A proof cut short, or claiming another position, does not pass either.
    if proof.path:
        short = InclusionProof(proof.leaf, proof.leaf_index, proof.leaf_count, proof.path[:-1])
        assert not verify_inclusion(short, root)
    assert not verify_inclusion(InclusionProof(proof.leaf, proof.leaf_count, proof.leaf_count, proof.path), root)


def _rest(proof: InclusionProof) -> tuple[int, int, tuple[Step, ...]]:
    return proof.leaf_index, proof.leaf_count, proof.path


@settings(max_examples=60, deadline=None)
@given(
    ballots=st.lists(
        st.tuples(st.binary(min_size=16, max_size=16), st.sampled_from(["agree", "oppose", "abstain"])),
        min_size=1,
        max_size=20,
        unique_by=lambda b: b[0],
    ),
    area=st.integers(1000, 50000).map(lambda centi: centi / 100),
    data=st.data(),
)
def test_an_owner_verifies_their_ballot_and_nothing_else(
    ballots: list[tuple[bytes, str]], area: float, data: st.DataObject
) -> None:
    receipts = [format_receipt(raw.hex()) for raw, _ in ballots]
    leaves = [
        ballot_leaf("music-square", "M1", receipt_commitment(r), choice, area)
        for r, (_, choice) in zip(receipts, ballots, strict=True)
    ]
    root = merkle_root(leaves)
    i = data.draw(st.integers(0, len(ballots) - 1))
    receipt, choice = receipts[i], ballots[i][1]
    answer = {"community_id": "music-square", "motion_id": "M1", "merkle_root": root}
    answer |= inclusion_proof(leaves, leaves[i]).as_dict()
    assert verify_ballot(answer, receipt, choice, area)
    assert verify_ballot(answer, receipt, choice, area, root=root)
    other = next(c for c in ("agree", "oppose", "abstain") if c != choice)
    assert not verify_ballot(answer, receipt, other, area)  # counted otherwise than cast
    assert not verify_ballot(answer, receipt, choice, area + 0.01)  # weighed otherwise
    assert not verify_ballot({**answer, "motion_id": "M2"}, receipt, choice, area)
    assert not verify_ballot(answer, receipt, choice, area, root="0" * 64)  # not the published root
    stranger = format_receipt(bytes(b ^ 0xFF for b in ballots[i][0]).hex())
    assert not verify_ballot(answer, stranger, choice, area)
    assert not verify_ballot({**answer, "path": "garbage"}, receipt, choice, area)
