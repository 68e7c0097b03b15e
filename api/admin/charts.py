"""Charts the hub draws itself, as SVG (no script, no CDN): horizontal bars with labels.

Colours come from the console's stylesheet through class names, so the page's CSP needs
no inline styles; text is escaped, as anything a label holds is data.
"""

from __future__ import annotations

from html import escape

from markupsafe import Markup

ROW = 26
LABEL_WIDTH = 190
BAR_WIDTH = 360
VALUE_WIDTH = 90


def bar_chart(title: str, bars: list[tuple[str, int]], empty: str) -> Markup:
    """An SVG of one bar per (label, value), longest bar = largest value; `empty` when none."""
    if not bars:
        return Markup('<p class="empty">{}</p>').format(empty)
    width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH
    height = ROW * len(bars) + 8
    top = max(value for _, value in bars) or 1
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for index, (label, value) in enumerate(bars):
        y = 4 + index * ROW
        length = round(BAR_WIDTH * value / top) if value > 0 else 0
        parts.append(
            f'<text class="chart-label" x="{LABEL_WIDTH - 8}" y="{y + 17}" text-anchor="end">{escape(label)}</text>'
            f'<rect class="chart-bar" x="{LABEL_WIDTH}" y="{y + 4}" width="{max(length, 1)}" height="{ROW - 8}"/>'
            f'<text class="chart-value" x="{LABEL_WIDTH + length + 6}" y="{y + 17}">{value:,}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
