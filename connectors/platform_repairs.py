"""System 9, WeChat platform: repair requests with free-text descriptions (报修), from the table `repairs`."""

from connectors.platform import PlatformTable


class PlatformRepairs(PlatformTable):
    """Rows of the platform's `repairs` table updated in a window."""

    name = "platform_repairs"
    table = "repairs"
