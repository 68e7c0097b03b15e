"""Charts the hub draws itself, as SVG (no script, no CDN): horizontal bars with labels.

Colours come from the console's stylesheet through class names, so the page's CSP needs
no inline styles; text is escaped, as anything a label holds is data.
"""

from __future__ import annotations

from html import escape

from markupsafe import Markup

# Each bar's label sits on its own line above the bar, so the chart is narrow (360 units):
# at a phone's 375 px it scales to about 0.9, and 13-unit text stays above 11 px; long Chinese
# labels never squeeze the bars.
ROW = 40
WIDTH = 360
BAR_WIDTH = 290
FONT = 13  # the stylesheet's .chart-label size, in SVG units


def bar_chart(title: str, bars: list[tuple[str, int]], empty: str) -> Markup:
    """An SVG of one bar per (label, value), longest bar = largest value; `empty` when none."""
    if not bars:
        return Markup('<p class="empty">{}</p>').format(empty)
    height = ROW * len(bars) + 4
    top = max(value for _, value in bars) or 1
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for index, (label, value) in enumerate(bars):
        y = 2 + index * ROW
        length = round(BAR_WIDTH * value / top) if value > 0 else 0
        parts.append(
            f'<text class="chart-label" x="0" y="{y + FONT}">{escape(label)}</text>'
            f'<rect class="chart-bar" x="0" y="{y + 18}" width="{max(length, 1)}" height="16"/>'
            f'<text class="chart-value" x="{length + 6}" y="{y + 31}">{value:,}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
