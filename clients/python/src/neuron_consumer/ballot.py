"""`neuron-consumer verify-ballot`: an owner's offline check that their ballot is a leaf under
the motion's published Merkle root (the hub's docs/votes.md has the scheme).

- commitment  SHA-256("neuron-hub/ballot-receipt/v1:" || 32 lowercase hex digits of the receipt), hex
- leaf        SHA-256(0x00 || "neuron-hub/ballot-leaf/v1" || ns(community) || ns(motion)
              || ns(commitment) || ns(choice) || ns(weight)), ns(s) = "<bytes of s>:<s>,",
              weight = floor(area m² x 100 + 0.5)
- node        SHA-256(0x01 || left || right) over the raw 32-byte digests
- tree        leaves sorted; neighbours paired (0,1), (2,3), ...; an unpaired last node goes up alone
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from typing import Any

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def receipt_commitment(receipt: str) -> str:
    digits = re.sub(r"[\s-]", "", receipt).lower()
    if not _HEX32.match(digits):
        raise ValueError("not a ballot receipt (32 hex digits expected)")
    return _sha256_hex(("neuron-hub/ballot-receipt/v1:" + digits).encode())


def ballot_leaf(community_id: str, motion_id: str, commitment: str, choice: str, area_m2: float) -> str:
    weight = str(math.floor(area_m2 * 100 + 0.5))
    body = "neuron-hub/ballot-leaf/v1" + "".join(
        f"{len(f.encode())}:{f}," for f in (community_id, motion_id, commitment, choice, weight)
    )
    return _sha256_hex(b"\x00" + body.encode())


def _node(left: str, right: str) -> str:
    return _sha256_hex(b"\x01" + bytes.fromhex(left) + bytes.fromhex(right))


def _sides(index: int, count: int) -> list[str]:
    """The sibling side at each level where the leaf has a sibling (an unpaired last node has none)."""
    sides = []
    while count > 1:
        if index % 2:
            sides.append("left")
        elif index + 1 < count:
            sides.append("right")
        index, count = index // 2, (count + 1) // 2
    return sides


def verify_ballot(proof: Mapping[str, Any], receipt: str, choice: str, area_m2: float, root: str | None = None) -> bool:
    """Whether `proof` (the answer of GET /v1/feeds/governance.votes/proof) shows this ballot
    under the motion's root (`root` from the published partition, else the proof's own)."""
    try:
        leaf, index, count = str(proof["leaf"]), int(proof["leaf_index"]), int(proof["leaf_count"])
        path = [(str(step["side"]), str(step["hash"])) for step in proof["path"]]
        published = str(proof["merkle_root"])
        expected_leaf = ballot_leaf(
            str(proof["community_id"]), str(proof["motion_id"]), receipt_commitment(receipt), choice, area_m2
        )
    except (KeyError, TypeError, ValueError):
        return False
    if not all(_HEX64.match(d) for d in [leaf, *(h for _, h in path)]) or (root is not None and root != published):
        return False
    if leaf != expected_leaf or not 0 <= index < count or [s for s, _ in path] != _sides(index, count):
        return False
    digest = leaf
    for side, sibling in path:
        digest = _node(sibling, digest) if side == "left" else _node(digest, sibling)
    return digest == published
