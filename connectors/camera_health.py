"""System 5, CCTV: hourly health reports of the cameras, from the vendor's `camera-health` resource."""

from connectors.intercom import IntercomStream


class CameraHealth(IntercomStream):
    """Records of the vendor's `camera-health` resource updated in a window."""

    name = "camera_health"
    resource = "camera-health"
