"""System 9, WeChat platform: notices published to residents (公告), from the table `notices`."""

from connectors.platform import PlatformTable


class PlatformNotices(PlatformTable):
    """Rows of the platform's `notices` table updated in a window."""

    name = "platform_notices"
    table = "notices"
