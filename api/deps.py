"""FastAPI dependencies: the hub's state, the authenticated caller, its policy and its grant of a feed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from api.audit import RequestNote
from api.auth import Caller
from neuron.settings import Settings
from privacy.keys import HubKeys
from privacy.policy import Policy
from schemas.feeds import Feed

NOT_FOUND = "not found"  # one answer for "no such feed" and "not yours": never a hint


@dataclass
class Hub:
    """What the routes need, built once by `create_app`."""

    settings: Settings
    keys: HubKeys
    feeds: dict[str, Feed]
    policies: dict[str, Policy]


@dataclass(frozen=True)
class Grant:
    """A feed the caller's policy grants, with that policy."""

    feed: Feed
    policy: Policy
    policy_name: str


def get_hub(request: Request) -> Hub:
    """The hub state stored on the application."""
    hub: Hub = request.app.state.hub
    return hub


def get_note(request: Request) -> RequestNote:
    """The audit note of this request (a throwaway one on routes that are not audited)."""
    note = getattr(request.state, "audit", None)
    return note if isinstance(note, RequestNote) else RequestNote()


HubDep = Annotated[Hub, Depends(get_hub)]
NoteDep = Annotated[RequestNote, Depends(get_note)]


def get_caller(note: NoteDep) -> Caller:
    """The authenticated consumer; the gate has refused unsigned requests already."""
    if note.caller is None:
        raise HTTPException(401, "request is not signed")
    return note.caller


CallerDep = Annotated[Caller, Depends(get_caller)]


def get_policy(hub: HubDep, caller: CallerDep, note: NoteDep) -> Policy | None:
    """The caller's sharing policy; None if its policy file has gone (then nothing is granted)."""
    policy = hub.policies.get(caller.policy)
    if policy is not None:
        note.policy_fingerprint = policy.fingerprint
    return policy


PolicyDep = Annotated[Policy | None, Depends(get_policy)]


def get_grant(feed: str, hub: HubDep, caller: CallerDep, policy: PolicyDep, note: NoteDep) -> Grant:
    """The caller's grant of the feed in the path; the same 404 for unknown and ungranted feeds."""
    known = hub.feeds.get(feed)
    if known is not None:
        note.feed = feed  # only catalog names reach the audit log's feed column
    if known is None or policy is None or not policy.grants(feed):
        raise HTTPException(404, NOT_FOUND)
    return Grant(feed=known, policy=policy, policy_name=caller.policy)


GrantDep = Annotated[Grant, Depends(get_grant)]
