"""System 9, WeChat platform: consent to optional functions (授权), from the table `consent`."""

from connectors.platform import PlatformTable


class PlatformConsent(PlatformTable):
    """Rows of the platform's `consent` table updated in a window."""

    name = "platform_consent"
    table = "consent"
