"""Verifiable owners' votes: ballot receipts, ballot leaves, the Merkle tree over a motion's
ballots and its inclusion proofs (docs/votes.md has the scheme in full).

Everything here is plain SHA-256 over documented bytes, with no key and nothing of the hub:
an owner (or anyone they trust) can check a proof offline with this module alone, or with a
few lines in any language. The mart `governance.votes` computes the same leaves and root in
SQL (warehouse/marts/70_governance_votes.sql); the tests hold the two to each other.

- receipt      128 random bits the platform shows the voter once, as 32 hex digits (dashes
               and spaces are ignored, case too). The platform stores only its commitment.
- commitment   SHA-256("neuron-hub/ballot-receipt/v1:" || receipt), hex. Kept in staging,
               never published: with it the leaf's choice could be guessed.
- lookup tag   SHA-256("neuron-hub/ballot-lookup/v1:" || commitment), hex. Published beside
               each leaf so the hub can find a receipt's leaf; it reveals nothing of the ballot.
- leaf         SHA-256(0x00 || "neuron-hub/ballot-leaf/v1" || ns(community) || ns(motion)
               || ns(commitment) || ns(choice) || ns(weight)), ns(s) = "<bytes of s>:<s>,",
               weight = floor area in hundredths of m².
- node         SHA-256(0x01 || left || right) over the raw 32-byte digests.
- tree         leaves sorted ascending; each level pairs neighbours (0,1), (2,3), ...; an
               unpaired last node goes up unchanged; the root is the last node standing.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

RECEIPT_DOMAIN = "neuron-hub/ballot-receipt/v1:"
LOOKUP_DOMAIN = "neuron-hub/ballot-lookup/v1:"
LEAF_DOMAIN = "neuron-hub/ballot-leaf/v1"
LEAF_PREFIX = b"\x00"  # leaves and inner nodes can never be confused (second-preimage attacks)
NODE_PREFIX = b"\x01"
SCHEME = "neuron-hub/ballot-merkle/v1"
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
Side = Literal["left", "right"]


def new_receipt() -> str:
    """A fresh receipt as the platform shows it: 32 hex digits in groups of four."""
    return format_receipt(secrets.token_hex(16))


def format_receipt(hex32: str) -> str:
    """32 hex digits as the voter reads them: eight groups of four, joined by dashes."""
    digits = normalise_receipt(hex32)
    return "-".join(digits[i : i + 4] for i in range(0, 32, 4))


def normalise_receipt(text: str) -> str:
    """The receipt's 32 lowercase hex digits; ValueError if it is not a receipt."""
    digits = re.sub(r"[\s-]", "", text).lower()
    if not _HEX32.match(digits):
        raise ValueError("not a ballot receipt (32 hex digits expected)")
    return digits


def receipt_commitment(receipt: str) -> str:
    """What the platform stores instead of the receipt (hex SHA-256)."""
    return _sha256_hex((RECEIPT_DOMAIN + normalise_receipt(receipt)).encode())


def lookup_tag(commitment: str) -> str:
    """The published tag that finds a ballot's leaf from its commitment (hex SHA-256)."""
    return _sha256_hex((LOOKUP_DOMAIN + commitment).encode())


def weight_centi_m2(area_m2: float) -> int:
    """A ballot's floor-area weight in hundredths of m², rounded half up (as the mart's SQL does)."""
    return math.floor(area_m2 * 100 + 0.5)


def _netstring(value: str) -> str:
    return f"{len(value.encode())}:{value},"


def ballot_leaf(community_id: str, motion_id: str, commitment: str, choice: str, area_m2: float) -> str:
    """The leaf of one ballot (hex SHA-256)."""
    fields = (community_id, motion_id, commitment, choice, str(weight_centi_m2(area_m2)))
    body = LEAF_DOMAIN + "".join(_netstring(f) for f in fields)
    return _sha256_hex(LEAF_PREFIX + body.encode())


def node_hash(left: str, right: str) -> str:
    """An inner node over two hex digests."""
    return _sha256_hex(NODE_PREFIX + bytes.fromhex(left) + bytes.fromhex(right))


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _levels(leaves: Sequence[str]) -> list[list[str]]:
    """Every level of the tree, leaves (sorted) first, the root's level last."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    level = sorted(leaves)
    if len(set(level)) != len(level):
        raise ValueError("duplicate leaves")
    levels = [level]
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)]
        levels.append(level)
    return levels


def merkle_root(leaves: Sequence[str]) -> str:
    """The root over a motion's leaves (in any order: they are sorted first)."""
    return _levels(leaves)[-1][0]


@dataclass(frozen=True)
class Step:
    """One sibling on the way up: its digest and on which side of ours it sits."""

    side: Side
    hash: str


@dataclass(frozen=True)
class InclusionProof:
    """That a leaf is the `leaf_index`-th of `leaf_count` sorted leaves under a root."""

    leaf: str
    leaf_index: int
    leaf_count: int
    path: tuple[Step, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "leaf": self.leaf,
            "leaf_index": self.leaf_index,
            "leaf_count": self.leaf_count,
            "path": [{"side": s.side, "hash": s.hash} for s in self.path],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InclusionProof:
        """Parse a proof as the API serves it; ValueError if it is malformed."""
        try:
            path = tuple(Step(step["side"], step["hash"]) for step in data["path"])
            proof = cls(str(data["leaf"]), int(data["leaf_index"]), int(data["leaf_count"]), path)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError("malformed inclusion proof") from exc
        digests = [proof.leaf, *(s.hash for s in path)]
        if not all(isinstance(d, str) and _HEX64.match(d) for d in digests) or any(
            s.side not in ("left", "right") for s in path
        ):
            raise ValueError("malformed inclusion proof")
        return proof


def _shape(index: int, count: int) -> list[Side | None]:
    """The sibling side at each level for the leaf at `index` of `count` (None: promoted alone)."""
    sides: list[Side | None] = []
    while count > 1:
        if index % 2:
            sides.append("left")
        elif index + 1 < count:
            sides.append("right")
        else:
            sides.append(None)
        index, count = index // 2, (count + 1) // 2
    return sides


def inclusion_proof(leaves: Sequence[str], leaf: str) -> InclusionProof:
    """The proof for `leaf`; KeyError if it is not one of `leaves`."""
    levels = _levels(leaves)
    try:
        index = levels[0].index(leaf)
    except ValueError:
        raise KeyError(leaf) from None
    path, i = [], index
    for level, side in zip(levels, _shape(index, len(levels[0])), strict=False):
        if side == "left":
            path.append(Step("left", level[i - 1]))
        elif side == "right":
            path.append(Step("right", level[i + 1]))
        i //= 2
    return InclusionProof(leaf, index, len(levels[0]), tuple(path))


def verify_inclusion(proof: InclusionProof, root: str) -> bool:
    """Whether the proof leads from its leaf to `root`, with the shape its index and count imply."""
    if not 0 <= proof.leaf_index < proof.leaf_count:
        return False
    expected = [s for s in _shape(proof.leaf_index, proof.leaf_count) if s is not None]
    if [s.side for s in proof.path] != expected:
        return False
    digest = proof.leaf
    for step in proof.path:
        digest = node_hash(step.hash, digest) if step.side == "left" else node_hash(digest, step.hash)
    return digest == root


def verify_ballot(proof: Mapping[str, Any], receipt: str, choice: str, area_m2: float, root: str | None = None) -> bool:
    """An owner's offline check: the ballot they cast (their receipt, choice and area) is a leaf
    under the motion's published root.

    `proof` is the API's answer to `GET /v1/feeds/governance.votes/proof?receipt=...` (it names
    the community, the motion and the root); pass the root read from the published partition
    as `root` to check against that rather than against the answer's own copy.
    """
    try:
        parsed = InclusionProof.from_dict(proof)
        commitment = receipt_commitment(receipt)
        leaf = ballot_leaf(str(proof["community_id"]), str(proof["motion_id"]), commitment, choice, area_m2)
        published = str(proof["merkle_root"])
    except (KeyError, ValueError):
        return False
    if root is not None and root != published:
        return False
    return parsed.leaf == leaf and verify_inclusion(parsed, published)
