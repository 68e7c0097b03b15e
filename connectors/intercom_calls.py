"""System 5, video intercom: calls from the entrance door stations, from the vendor's `calls` resource."""

from connectors.intercom import IntercomStream


class IntercomCalls(IntercomStream):
    """Records of the vendor's `calls` resource updated in a window."""

    name = "intercom_calls"
    resource = "calls"
