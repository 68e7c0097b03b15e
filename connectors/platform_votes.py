"""System 9, WeChat platform: owners' e-vote ballots per motion (业主电子投票), from the table `votes`."""

from connectors.platform import PlatformTable


class PlatformVotes(PlatformTable):
    """Rows of the platform's `votes` table updated in a window."""

    name = "platform_votes"
    table = "votes"
