"""System 9, WeChat platform: households and their rooms, with fee arrears, from the table `households`."""

from connectors.platform import PlatformTable


class PlatformHouseholds(PlatformTable):
    """Rows of the platform's `households` table updated in a window."""

    name = "platform_households"
    table = "households"
