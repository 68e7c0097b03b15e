"""Whether a live alarm may go to a consumer: the legal basis its policy states (issue 16, item 3).

An alarm of an in-home device (system 6: smoke and gas detectors, care wristbands) goes to a
consumer on the basis its policy states for the category: on vital interest from every
household; on consent only from a household that opted in to the function (warehouse/consent.py,
recorded by the household's staging token, which the relay derives from the alarm's raw
household id). An alarm without a known household, or a category without a stated basis, does
not go on consent (fail closed). Public-space devices' alarms (fences, manholes) need no basis.

The consent store is read again every `refresh_seconds` (the platform's consents arrive with
its batch loads, minutes apart), not once per alarm.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from privacy.deidentify import staging_key
from privacy.keys import HubKeys
from privacy.policy import RELAY_IN_HOME, Basis
from privacy.pseudonymise import pseudonym
from relay.alarms import DeviceAlarm
from relay.lifecycle import Alarm

HOUSEHOLD = "household"  # the identifier kind the consent store's tokens are made with


class HouseholdTokens:
    """An alarm's household as the consent store names it (cached: an HMAC per alarm is waste)."""

    def __init__(self, keys: HubKeys) -> None:
        self._key = staging_key(keys, HOUSEHOLD)
        self._tokens: dict[str, str] = {}

    def __call__(self, alarm: DeviceAlarm) -> str | None:
        raw = alarm.identifiers.get("household_id")
        if raw is None or alarm.category not in RELAY_IN_HOME:
            return None
        token = self._tokens.get(raw)
        if token is None:
            token = self._tokens[raw] = pseudonym(self._key, raw)
        return token


class ConsentGate:
    """The households that opted in, per function, as of the last read of the consent store."""

    def __init__(
        self,
        read: Callable[[str], set[str]],
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.read, self.refresh_seconds, self.clock = read, refresh_seconds, clock
        self._consenting: dict[str, frozenset[str]] = {}
        self._read_at: float | None = None

    def refresh(self) -> None:
        """Read the consent store now."""
        functions = sorted(set(RELAY_IN_HOME.values()))
        self._consenting = {f: frozenset(self.read(f)) for f in functions}
        self._read_at = self.clock()

    def consenting(self, function: str) -> frozenset[str]:
        if self._read_at is None or self.clock() - self._read_at >= self.refresh_seconds:
            self.refresh()
        return self._consenting.get(function, frozenset())

    def allows(self, alarm: Alarm, basis: Basis | None) -> bool:
        """Whether `alarm` may go on `basis` (the policy's for its category)."""
        function = RELAY_IN_HOME.get(alarm.category)
        if function is None or basis == "vital_interest":
            return True
        if basis != "consent" or alarm.household is None:
            return False
        return alarm.household in self.consenting(function)
