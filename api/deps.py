"""FastAPI dependencies: the hub's state, the authenticated caller, its policy and its grant of a feed.

They are `async` because they only read memory: a sync dependency would cost each request
a trip through the thread pool.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, HTTPException, Request

from api.auth import Caller
from api.metrics import ApiMetrics
from api.notes import RequestNote
from api.partition_ids import PartitionIds
from api.policy_reload import record_reload
from kernel.errors import ConfigError
from kernel.settings import ApiSettings, Settings
from privacy.keys import HubKeys
from privacy.policy import Policy, load_policies
from schemas.feeds import Feed

POLICY_CHECK_SECONDS = 1.0  # how stale a withdrawn grant may be, at most
NOT_FOUND = "not found"  # one answer for "no such feed" and "not yours": never a hint
T = TypeVar("T")


@dataclass
class Hub:
    """What the routes need, built once by `create_app`."""

    settings: Settings
    keys: HubKeys
    feeds: dict[str, Feed]
    policies: dict[str, Policy]
    options: ApiSettings = field(default_factory=ApiSettings)
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    ids: PartitionIds | None = None
    # The folder the policies came from: set, the policies are live (`current_policies`).
    policies_dir: Path | None = None
    _checked_at: float = field(default=float("-inf"), repr=False)
    # id(policy) -> (policy, fingerprint): hashing a policy costs ~3% of a request, and the
    # policies are loaded once; a policy replaced by a new object gets its own entry.
    _fingerprints: dict[int, tuple[Policy, str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.ids is None:
            self.ids = PartitionIds(self.keys)
        # What the folder last loaded as: a reload happens when the folder changes, not when
        # `policies` was set by other means (tests grant feeds in memory).
        self._loaded: dict[str, Policy] = self.policies

    def fingerprint(self, policy: Policy) -> str:
        """The policy's fingerprint, computed once per loaded policy (it is on every request's path)."""
        cached = self._fingerprints.get(id(policy))
        if cached is None or cached[0] is not policy:
            cached = self._fingerprints[id(policy)] = (policy, policy.fingerprint)
        return cached[1]

    def current_policies(self) -> dict[str, Policy]:
        """The policies in force: the folder is looked at (a stat per file) at most once per
        POLICY_CHECK_SECONDS, and a change — a grant withdrawn, a file removed, a treatment made
        stricter — applies from the next request on, audited with the new fingerprints. A
        folder that no longer parses grants nothing until it is fixed (fail closed)."""
        if self.policies_dir is None:
            return self.policies
        now = time.monotonic()
        if now - self._checked_at < POLICY_CHECK_SECONDS:
            return self.policies
        self._checked_at = now
        try:
            fresh = load_policies(self.policies_dir)
            error = None
        except ConfigError as exc:
            fresh, error = {}, str(exc)
        if fresh is not self._loaded:  # the loader returns the same object while nothing changed
            previous, self.policies, self._loaded = self.policies, fresh, fresh
            record_reload(self.settings, previous, fresh, error)
        return self.policies

    @property
    def partition_ids(self) -> PartitionIds:
        assert self.ids is not None
        return self.ids


@dataclass(frozen=True)
class Grant:
    """A feed the caller's policy grants, with that policy."""

    feed: Feed
    policy: Policy
    policy_name: str


async def offload(function: Callable[..., T], *args: Any) -> T:
    """Run blocking work (the control DB, the lake) in a worker thread. If the request's time
    limit cancels the wait, the thread is abandoned: it finishes its read, its result is dropped."""
    return await anyio.to_thread.run_sync(functools.partial(function, *args), abandon_on_cancel=True)


async def get_hub(request: Request) -> Hub:
    """The hub state stored on the application."""
    hub: Hub = request.app.state.hub
    return hub


async def get_note(request: Request) -> RequestNote:
    """The audit note of this request (a throwaway one on routes that are not audited)."""
    note = getattr(request.state, "audit", None)
    return note if isinstance(note, RequestNote) else RequestNote()


HubDep = Annotated[Hub, Depends(get_hub)]
NoteDep = Annotated[RequestNote, Depends(get_note)]


async def get_caller(note: NoteDep) -> Caller:
    """The authenticated consumer; the gate has refused unsigned requests already."""
    if note.caller is None:
        raise HTTPException(401, "request is not signed")
    return note.caller


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_policy(hub: HubDep, caller: CallerDep, note: NoteDep) -> Policy | None:
    """The caller's sharing policy; None if its policy file has gone (then nothing is granted)."""
    policy = hub.current_policies().get(caller.policy)
    if policy is not None:
        note.policy_fingerprint = hub.fingerprint(policy)
    return policy


PolicyDep = Annotated[Policy | None, Depends(get_policy)]


async def get_grant(feed: str, hub: HubDep, caller: CallerDep, policy: PolicyDep, note: NoteDep) -> Grant:
    """The caller's grant of the feed in the path; the same 404 for unknown and ungranted feeds."""
    known = hub.feeds.get(feed)
    if known is not None:
        note.feed = feed  # only catalog names reach the audit log's feed column
    if known is None or policy is None or not policy.grants(feed):
        raise HTTPException(404, NOT_FOUND)
    return Grant(feed=known, policy=policy, policy_name=caller.policy)


GrantDep = Annotated[Grant, Depends(get_grant)]
