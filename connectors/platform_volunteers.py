"""System 9, WeChat platform: volunteer sign-ups and hours (志愿者), from the table `volunteers`."""

from connectors.platform import PlatformTable


class PlatformVolunteers(PlatformTable):
    """Rows of the platform's `volunteers` table updated in a window."""

    name = "platform_volunteers"
    table = "volunteers"
