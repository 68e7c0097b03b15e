"""System 9, WeChat platform: real-name-verified residents (实名认证住户), from the table `residents`."""

from connectors.platform import PlatformTable


class PlatformResidents(PlatformTable):
    """Rows of the platform's `residents` table updated in a window."""

    name = "platform_residents"
    table = "residents"
