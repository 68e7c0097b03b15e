"""System 9, WeChat platform: property and parking fee payments, from the table `fee_payments`."""

from connectors.platform import PlatformTable


class PlatformFeePayments(PlatformTable):
    """Rows of the platform's `fee_payments` table updated in a window."""

    name = "platform_fee_payments"
    table = "fee_payments"
