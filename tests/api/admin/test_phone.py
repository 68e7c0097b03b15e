"""Every console page in Chinese and English, on a desktop (1280 px) and a phone (375 px), in
real headless Chromium (issue 19.4): a screenshot of each into var/screenshots/ for a
reviewer, and on the phone no horizontal page overflow (wide tables scroll inside their own
box) and no text, chart labels included, smaller than 11 px.

Without chromium these tests skip, saying why; on CI (NEURON_REQUIRE_SERVICES=1) they fail.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.admin.console import ADMIN, ConsoleHub
from tests.api.admin.test_browser import PAGES, Tab, chromium

pytestmark = pytest.mark.slow
__all__ = ["chromium"]  # the Chromium fixture, shared with the other browser tests

PHONE, DESKTOP = 375, 1280
MIN_TEXT_PX = 11
# The smallest rendered size of any visible text on the page: HTML text by its computed size,
# SVG chart text by its size times the SVG's scale on screen.
SMALLEST_TEXT = """() => {
  let smallest = 1000, where = "";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement;
    if (!node.textContent.trim() || !el || el.closest("title, script, style, option")) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    let size = parseFloat(getComputedStyle(el).fontSize);
    const svg = el.closest("svg");
    if (svg && svg.viewBox.baseVal && svg.viewBox.baseVal.width) {
      size *= svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
    }
    if (size < smallest) { smallest = size; where = el.tagName + ": " + node.textContent.trim().slice(0, 30); }
  }
  return [smallest, where];
}"""


def every_page(console: ConsoleHub) -> dict[str, str]:
    return {**PAGES, "export": f"/shared/{console.exports[0]}"}


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_every_page_fits_and_reads_on_a_phone_and_a_desktop(
    chromium: Any, console: ConsoleHub, language: str, width: int
) -> None:
    phone = width == PHONE
    tab = Tab(chromium, console, viewport={"width": width, "height": 800}, is_mobile=phone, has_touch=phone)
    problems: list[str] = []
    try:
        tab.go("/lang/" + language)
        tab.go("/")
        tab.shoot(f"login-{language}-{width}")
        tab.sign_in(ADMIN)
        for name, path in every_page(console).items():
            response = tab.go(path)
            assert response.status == 200, name
            assert tab.page.get_attribute("html", "lang") == ("zh-CN" if language == "zh" else "en")
            tab.shoot(f"{name}-{language}-{width}")
            if not phone:
                continue
            scroll_width = tab.page.evaluate("document.scrollingElement.scrollWidth")
            if scroll_width > PHONE:
                problems.append(f"{name}: the page is {scroll_width} px wide")
            smallest, where = tab.page.evaluate(SMALLEST_TEXT)
            if smallest < MIN_TEXT_PX:
                problems.append(f"{name}: {where!r} is {smallest:.1f} px")
        assert tab.errors == []
    finally:
        tab.close()
    assert problems == [], "\n".join(problems)


def test_a_chart_on_a_phone_has_labels_of_11_px_or_more(chromium: Any, console: ConsoleHub) -> None:
    state, original = console.hub.app.state, console.hub.app.state.now
    state.now = lambda: console.loaded_at  # "today" is the day of the fixture's loads and exports
    tab = Tab(chromium, console, viewport={"width": PHONE, "height": 800}, is_mobile=True, has_touch=True)
    try:
        tab.sign_in(ADMIN)
        tab.go("/")
        sizes = tab.page.eval_on_selector_all(
            "svg.chart text",
            """texts => texts.map(t => {
                const svg = t.closest("svg");
                return parseFloat(getComputedStyle(t).fontSize)
                    * svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
            })""",
        )
        tab.shoot(f"overview-charts-zh-{PHONE}")
    finally:
        tab.close()
        state.now = original
    assert sizes, "no chart drawn"
    assert min(sizes) >= MIN_TEXT_PX


@pytest.mark.parametrize("language", ["zh", "en"])
def test_a_sealed_plate_and_its_legend_fit_on_a_phone(chromium: Any, console: ConsoleHub, language: str) -> None:
    """The fixture's feed has no treated field: the export of a sealed plate is rendered as the
    console renders it (tests/api/admin/test_i18n.py) and shown under the console's stylesheet."""
    from tests.api.admin.test_i18n import render_export

    tab = Tab(chromium, console, viewport={"width": PHONE, "height": 800}, is_mobile=True, has_touch=True)
    try:
        tab.go("/login")  # the console's origin, so the page's stylesheet loads from it
        tab.page.set_content(render_export(language), wait_until="load")
        assert tab.page.locator("#legend").is_visible()
        assert tab.page.evaluate("document.scrollingElement.scrollWidth") <= PHONE
        smallest, where = tab.page.evaluate(SMALLEST_TEXT)
        assert smallest >= MIN_TEXT_PX, where
        tab.shoot(f"export-sealed-{language}-{PHONE}")
    finally:
        tab.close()
