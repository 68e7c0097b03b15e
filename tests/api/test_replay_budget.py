"""A replay does not spend the victim's rate bucket (issue 17).

A replay sent to another API process (or after a restart) is not in that process's memory
of nonces: it is only refused when its audit entry fails to claim the nonce. The token it
took from the consumer's bucket by then is given back."""

from __future__ import annotations

import copy

from api.nonces import RecentNonces
from tests.api.hub import LiveHub, send
from tests.api.test_limits import FEEDS, MovableClock, clock, limited_hub  # noqa: F401  (fixtures)


def test_replays_do_not_drain_the_victims_bucket(limited_hub: LiveHub, clock: MovableClock) -> None:  # noqa: F811
    district = limited_hub.identities["district"]
    authenticator = limited_hub.app.state.authenticator
    original = limited_hub.signed(FEEDS, district, created=clock.instant)
    assert send(original).status_code == 200  # the consumer's own request: one token of three
    for _ in range(5):
        authenticator.recent = RecentNonces(authenticator.window)  # as if at another worker
        assert send(copy.copy(original)).status_code == 401
    # The bucket (burst 3) still holds the two tokens the consumer did not use.
    answers = [send(limited_hub.signed(FEEDS, district, created=clock.instant)).status_code for _ in range(2)]
    assert answers == [200, 200]
