"""Sharing policies (config/policies/*.yaml): what one consumer may receive, field by field.

Nothing is published that a policy does not name. A field maps to an operator, by name
(`keep`) or with parameters (`{op: generalise, to: hour}`). A policy is checked against
the feed catalog when loaded (an unknown feed, field or operator, a bad parameter or an
operator that does not fit the field is a ConfigError naming file and line), and
fingerprinted, so every manifest and audit entry can say under which rule data left.
"""

from __future__ import annotations

import hashlib
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kernel.errors import ConfigError
from privacy.jws import canonical_json
from privacy.operators import Operator, parse_operator
from schemas.contract import Description, PrivacyClass
from schemas.feeds import Feed, load_feeds

DEFAULT_K = 5
OperatorSpec = str | dict[str, Any]

# The legal basis of a path carrying in-home devices' data (system 6; issue 16, item 3).
# Consent (PIPL Art. 13(1)(1)): only households that opted in to the function. Vital interest
# (Art. 13(1)(4), protecting life and health in an emergency): every household, and only for a
# live alarm whose delay could cost a life: smoke, gas, a fall.
Basis = Literal["consent", "vital_interest"]
BasisSpec = Basis | dict[str, Basis]
VITAL_INTEREST_CATEGORIES = frozenset({"smoke", "gas", "fall"})
# The relay's alarm categories from in-home devices and the consent function that covers each
# (relay/alarms.py classifies; tests/privacy/test_legal_basis.py keeps the two in step).
RELAY_IN_HOME: dict[str, str] = {
    "smoke": "smoke_gas",
    "gas": "smoke_gas",
    "fall": "elderly_care",
    "sos": "elderly_care",
    "heart_rate": "elderly_care",
}


class FeedGrant(BaseModel):
    """One feed granted to a consumer and the operator applied to each field."""

    model_config = ConfigDict(extra="forbid")

    fields: dict[str, OperatorSpec]
    k: int | None = Field(None, ge=2)  # aggregate feeds: suppression threshold; microdata: the k-check
    # Rows never given to this consumer, by a field's values (e.g. the district's alarms without
    # the wristbands' health alarms, which it receives only as the care feed's k-anonymous counts).
    exclude: dict[str, list[str]] = {}
    # Feeds of in-home devices' data: the legal basis, for the whole feed or per category.
    basis: BasisSpec | None = None

    @cached_property
    def operators(self) -> dict[str, Operator]:
        """The fields' operators, parsed (the policy was checked when loaded)."""
        return {name: parse_operator(spec) for name, spec in self.fields.items()}


class RelayGrant(BaseModel):
    """The live alarms the relay sends this consumer's upstream: the basis per in-home category."""

    model_config = ConfigDict(extra="forbid")

    basis: BasisSpec


def _basis_of(spec: BasisSpec | None, category: str | None) -> Basis | None:
    if spec is None or isinstance(spec, str):
        return spec
    return spec.get(category or "")


class Policy(BaseModel):
    """A consumer's sharing policy."""

    model_config = ConfigDict(extra="forbid")

    consumer: str
    version: int
    title: str
    legal_basis: str
    # What people read (the console): a short name of the consumer and the legal basis in
    # both languages. Optional; part of the fingerprint, as everything the policy says.
    display_name: Description | None = None
    legal_basis_text: Description | None = None
    retention_days: int = Field(ge=1)
    pseudonym_epoch: Literal["month", "quarter", "year"] | None = None
    feeds: dict[str, FeedGrant]
    relay: RelayGrant | None = None  # live alarms through the relay (an upstream names this policy)
    source: str = ""  # the file it came from, for error messages

    @property
    def fingerprint(self) -> str:
        """A hash of what the policy says (not of how the file is laid out)."""
        body = self.model_dump(exclude={"source"}, exclude_none=True)
        return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()

    def treatment_fingerprint(self, feed: str) -> str | None:
        """A hash of how this policy treats one feed (its fields' operators, k, ...): what a
        partition of the feed was published under; None if the feed is not granted."""
        grant = self.feeds.get(feed)
        if grant is None:
            return None
        body = grant.model_dump(exclude_none=True)
        return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()

    def in_force_for(self, feed: str, treatment_fingerprint: str | None, policy_fingerprint: str = "") -> bool:
        """Whether a partition of `feed` published under these fingerprints was published under
        the treatment in force now. One published before treatments were recorded (None) is
        judged by its columns alone, as before: its whole-policy fingerprint would also change
        with another feed's grant, and withholding on that would hide it for good."""
        del policy_fingerprint  # kept in the signature: what the partition records, for callers' clarity
        if treatment_fingerprint is None:
            return True
        return treatment_fingerprint == self.treatment_fingerprint(feed)

    def grants(self, feed: str) -> bool:
        return feed in self.feeds

    def feed_basis(self, feed: str, category: str | None = None) -> Basis | None:
        """The legal basis this policy states for a feed's in-home rows (of `category`)."""
        grant = self.feeds.get(feed)
        return None if grant is None else _basis_of(grant.basis, category)

    def relay_basis(self, category: str) -> Basis | None:
        """The legal basis stated for the relay's live alarms of an in-home `category` (None: none)."""
        return None if self.relay is None else _basis_of(self.relay.basis, category)

    def operator(self, feed: str, field: str) -> Operator:
        """The operator applied to a field (`drop` for a field the policy does not name)."""
        return self.feeds[feed].operators.get(field) or parse_operator("drop")

    def published_fields(self, feed: Feed) -> list[str]:
        """The feed's fields this consumer receives, in the feed's order."""
        return [f for f in feed.field_names() if self.operator(feed.name, f).name != "drop"]

    def treatment(self, feed: str, field: str) -> dict[str, Any]:
        """A field's treatment as the catalog shows it: operator and parameters."""
        return self.operator(feed, field).describe()

    def k_for(self, feed: str) -> int:
        """The k this consumer's grant of the feed applies."""
        return self.feeds[feed].k or DEFAULT_K


def pipl_art73(feed: Feed, policy: Policy) -> Literal["anonymised", "de-identified"]:
    """Whether the consumer's view of the feed is anonymised in the sense of PIPL Art. 73(4)
    (no field can identify a person even combined with other data) or only de-identified.

    Anonymised: every field is public or so treated that it cannot single anyone out, and
    the rows are either not about people or counts under k-anonymity.
    """
    grant = policy.feeds[feed.name]
    fields = [feed.field(name) for name in policy.published_fields(feed)]
    for field in fields:
        if policy.operator(feed.name, field.name).is_identifying(field):
            return "de-identified"
    about_people = any(f.privacy is not PrivacyClass.PUBLIC for f in fields)
    if feed.kind == "aggregate":
        return "anonymised" if grant.k or not about_people else "de-identified"
    return "de-identified" if about_people else "anonymised"


def _line_index(text: str) -> dict[tuple[str, ...], int]:
    """1-based line of every mapping key in the YAML, by its path of keys."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                here = (*path, str(key.value))
                lines[here] = key.start_mark.line + 1
                walk(value, here)

    root = yaml.compose(text)
    if root is not None:
        walk(root, ())
    return lines


def check_policy(policy: Policy, feeds: dict[str, Feed], lines: dict[tuple[str, ...], int]) -> None:
    """Check a policy against the catalog; ConfigError naming the file and line of the first problem."""

    def fail(path: tuple[str, ...], message: str) -> ConfigError:
        return ConfigError(f"{policy.source}:{lines.get(path, 1)}: {message}")

    for feed_name, grant in policy.feeds.items():
        where = ("feeds", feed_name)
        if feed_name not in feeds:
            raise fail(where, f"unknown feed {feed_name!r}")
        feed = feeds[feed_name]
        for field_name, spec in grant.fields.items():
            here = (*where, "fields", field_name)
            if field_name not in feed.field_names():
                raise fail(here, f"feed {feed_name!r} has no field {field_name!r}")
            try:
                operator = parse_operator(spec)
                operator.check(feed, feed.field(field_name))
            except ValueError as exc:
                raise fail(here, f"{feed_name}.{field_name}: {exc}") from None
        if grant.k and feed.kind == "aggregate":
            for count in feed.counts:
                if grant.operators.get(count, parse_operator("drop")).name not in ("aggregate", "drop"):
                    raise fail((*where, "fields", count), f"{feed_name}.{count}: under k, counts need aggregate")
        problem = _feed_basis_problem(feed, grant)
        if problem:
            raise fail((*where, "basis") if (*where, "basis") in lines else where, problem)
    if policy.relay is not None:
        problem = _basis_problem("relay", policy.relay.basis, sorted(RELAY_IN_HOME))
        if problem:
            raise fail(("relay", "basis"), problem)


def _feed_basis_problem(feed: Feed, grant: FeedGrant) -> str | None:
    """What is wrong with the basis a grant states for a feed (None: nothing)."""
    name = feed.name
    if feed.in_home is None:
        return None if grant.basis is None else f"feeds.{name}: carries no in-home data; remove `basis`"
    if feed.in_home.by is None:
        if grant.basis != "consent":
            stated = "states no legal basis" if grant.basis is None else "may go on consent only"
            return (
                f"feeds.{name} carries in-home devices' data (system 6) and {stated}: "
                f"add `basis: consent` under feeds.{name}"
            )
        return None
    excluded = set(grant.exclude.get(feed.in_home.by, []))
    needed = [c for c in feed.in_home.categories if c not in excluded]
    return _basis_problem(f"feeds.{name}", grant.basis, needed, feed.in_home.categories)


def _basis_problem(where: str, spec: BasisSpec | None, needed: list[str], known: list[str] | None = None) -> str | None:
    """What is wrong with a per-category basis: a category it carries without one, vital
    interest for an alarm that is not live-and-life-threatening, or an unknown category."""
    known = known if known is not None else needed
    given = {} if spec is None else ({c: spec for c in needed} if isinstance(spec, str) else spec)
    unknown = sorted(set(given) - set(known))
    if unknown:
        return f"{where}: basis names unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}"
    missing = [c for c in needed if c not in given]
    if missing:
        example = ", ".join(f"{c}: consent" for c in missing)
        add = f"`basis: {{{example}}}` under {where}" if spec is None else f"`{example}` to {where}.basis"
        return (
            f"{where} carries in-home alarms ({', '.join(missing)}) with no legal basis stated: add {add} "
            "(consent, or vital_interest for a live smoke, gas or fall alarm)"
        )
    vital = sorted(c for c in needed if given[c] == "vital_interest" and c not in VITAL_INTEREST_CATEGORIES)
    if vital:
        return (
            f"{where}: {', '.join(vital)} may go on consent only (vital interest covers live smoke, gas, fall alarms)"
        )
    return None


def load_policy_file(path: Path, feeds: dict[str, Feed] | None = None) -> Policy:
    """Read and check one policy file against the feed catalog."""
    text = path.read_text(encoding="utf-8")
    try:
        raw: Any = yaml.safe_load(text)
        lines = _line_index(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: a policy is a mapping (consumer, version, feeds, ...)")
    try:
        policy = Policy.model_validate({**raw, "source": str(path)})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(str(p) for p in first["loc"])
        line = max((n for p, n in lines.items() if loc[: len(p)] == p), default=1)
        raise ConfigError(f"{path}:{line}: {'.'.join(loc)}: {first['msg']}") from exc
    check_policy(policy, feeds if feeds is not None else load_feeds(), lines)
    return policy


def policies_stamp(policies_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """What identifies the folder's current policy files cheaply: name, mtime and size of each
    (a stat per file, no parse). A file added, removed, replaced or edited changes it."""
    stamps = []
    for path in sorted(policies_dir.glob("*.yaml")):
        try:
            st = path.stat()
        except FileNotFoundError:  # removed while we looked: the next look sees it gone
            continue
        stamps.append((path.name, st.st_mtime_ns, st.st_size))
    return tuple(stamps)


def load_policies(policies_dir: Path) -> dict[str, Policy]:
    """Every policy in the folder, keyed by consumer name: the policies in force now (a changed
    or removed file is read again; an unchanged folder costs a stat per file)."""
    return _load_policies(policies_dir, policies_stamp(policies_dir))


@lru_cache(maxsize=8)
def _load_policies(policies_dir: Path, stamp: tuple[tuple[str, int, int], ...]) -> dict[str, Policy]:
    del stamp  # part of the cache key only
    policies: dict[str, Policy] = {}
    for path in sorted(policies_dir.glob("*.yaml")):
        policy = load_policy_file(path)
        if policy.consumer in policies:
            raise ConfigError(f"{path}: a second policy for consumer {policy.consumer!r}")
        policies[policy.consumer] = policy
    return policies
