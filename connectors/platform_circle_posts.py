"""System 9, WeChat platform: neighbour-circle posts (邻里圈), from the table `circle_posts`."""

from connectors.platform import PlatformTable


class PlatformCirclePosts(PlatformTable):
    """Rows of the platform's `circle_posts` table updated in a window."""

    name = "platform_circle_posts"
    table = "circle_posts"
