"""System 5, CCTV: video-analytics events (metadata only, never images), from the `events` resource."""

from connectors.intercom import IntercomStream


class VideoEvents(IntercomStream):
    """Records of the vendor's `events` resource updated in a window."""

    name = "video_events"
    resource = "events"
