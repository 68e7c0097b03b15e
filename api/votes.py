"""Ballot inclusion proofs: `GET /v1/feeds/governance.votes/proof?receipt=...`.

An owner's receipt is turned into its commitment and lookup tag (warehouse.merkle), and the
tag is looked for in the caller's own published partitions of governance.votes, so a proof
only ever comes from what was published to that consumer, under its policy, and matches the
root it was given. Signed, audited and authorised like every /v1 route: a consumer not
granted the feed gets the usual 404, and so does a receipt that is malformed, unknown or
of a ballot since replaced, with no hint which. The audit log names the query parameter,
never the receipt (api.middleware.audit_path).
"""

from __future__ import annotations

from typing import Annotated, Any

import pyarrow.parquet as pq
from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from api.deps import NOT_FOUND, Grant, GrantDep, Hub, HubDep, NoteDep, offload
from api.notes import RequestNote
from api.openapi import V1_ERRORS, Open, answers, json_response
from api.records import latest_versions, partition_path, served_entry, within_policy
from kernel.errors import IntegrityError
from warehouse.control import session_scope
from warehouse.merkle import SCHEME, inclusion_proof, lookup_tag, merkle_root, receipt_commitment

VOTES = "governance.votes"
NEEDED = ["community_id", "motion_id", "merkle_root", "leaf_hashes", "lookup_tags"]
votes_router = APIRouter(prefix="/v1")
ReceiptQuery = Annotated[
    str, Query(min_length=1, max_length=80, description="The ballot receipt the vote page showed (32 hex digits).")
]


class ProofStep(BaseModel):
    """One sibling digest on the way to the root, and its side."""

    side: str
    hash: str


class PartitionRef(BaseModel):
    """The published partition the root was read from (fetch it at `href` to check the root)."""

    id: str
    href: str
    key: str
    version: int
    sha256: str


class BallotProof(Open):
    """That the receipt's ballot is a leaf under the motion's published Merkle root."""

    feed: str
    scheme: str
    community_id: str
    motion_id: str
    merkle_root: str
    leaf: str
    leaf_index: int
    leaf_count: int
    path: list[ProofStep]
    partition: PartitionRef


@votes_router.get(
    "/feeds/{feed}/proof",
    response_model=None,
    responses=answers({200: json_response("An inclusion proof for the receipt's ballot.", BallotProof)}, *V1_ERRORS),
)
async def ballot_proof(hub: HubDep, grant: GrantDep, note: NoteDep, receipt: ReceiptQuery) -> dict[str, Any]:
    """The inclusion proof of the ballot a receipt was given for (governance.votes only);
    check it offline with `warehouse.merkle.verify_ballot` or `neuron verify-ballot`."""
    if grant.feed.name != VOTES:
        raise HTTPException(404, NOT_FOUND)
    try:
        tag = lookup_tag(receipt_commitment(receipt))
    except ValueError:
        raise HTTPException(404, NOT_FOUND) from None
    found = await offload(_find, hub, grant, note, tag)
    if found is None:
        raise HTTPException(404, NOT_FOUND)
    return found


def _find(hub: Hub, grant: Grant, note: RequestNote, tag: str) -> dict[str, Any] | None:
    """Search the caller's latest partition versions for the tag; the proof, or None."""
    feed, policy = grant.feed, grant.policy
    granted = policy.published_fields(feed)
    note.rows = 0
    if not set(NEEDED) <= set(granted):
        return None  # the caller's view has no ballots to prove against
    with session_scope(hub.settings.control_url) as session:
        partitions = list(latest_versions(session, policy.consumer, feed.name, 0))
        for partition in partitions:
            session.expunge(partition)
    for partition in partitions:
        path = partition_path(hub.settings.lake_path, partition)
        if not within_policy(path, granted, partition, policy):
            continue
        for row in pq.read_table(path, columns=NEEDED).to_pylist():
            tags = (row["lookup_tags"] or "").split(",")
            if tag not in tags:
                continue
            leaves = row["leaf_hashes"].split(",")
            if len(leaves) != len(tags) or merkle_root(leaves) != row["merkle_root"]:
                raise IntegrityError(f"{feed.name} partition seq {partition.seq}: leaves do not match the root")
            proof = inclusion_proof(leaves, leaves[tags.index(tag)])
            note.rows, note.partitions, note.fields = 1, [served_entry(partition, 1)], NEEDED
            partition_id = hub.partition_ids.encode(policy.consumer, partition.seq)
            return {
                "feed": feed.name,
                "scheme": SCHEME,
                "community_id": row["community_id"],
                "motion_id": row["motion_id"],
                "merkle_root": row["merkle_root"],
                **proof.as_dict(),
                "partition": {
                    "id": partition_id,
                    "href": f"/v1/feeds/{feed.name}/partitions/{partition_id}",
                    "key": partition.partition_key,
                    "version": partition.version,
                    "sha256": partition.sha256,
                },
            }
    return None
