"""What the console's pages show: exports filtered and drilled into (rows equal to what the
consumer received), policies with their history, consent, the audit chain, and the parts
other modules provide shown as "not available" when absent."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
import yaml

from api.admin import overview
from api.admin.charts import bar_chart
from api.admin.policies import diff
from tests.api.admin.console import ADMIN, Browser, ConsoleHub
from tests.api.lake import FEED

ROW = re.compile(r"<tr>(.*?)</tr>", re.S)
CELL = re.compile(r"<td[^>]*>(.*?)</td>", re.S)
VALUE = re.compile(r'<td data-value="([^"]*)"', re.S)


@pytest.fixture
def admin(browser: Browser) -> Browser:
    browser.sign_in(ADMIN)
    return browser


def table_rows(page: str, table_id: str) -> list[list[str]]:
    """The body cells of a table on a page, unescaped."""
    body = page.split(f'id="{table_id}"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [[html.unescape(c) for c in CELL.findall(row)] for row in ROW.findall(body)]


def table_values(page: str, table_id: str) -> list[list[str]]:
    """The raw values (`data-value`) of a table's body cells: what the consumer received."""
    body = page.split(f'id="{table_id}"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [[html.unescape(c) for c in VALUE.findall(row)] for row in ROW.findall(body)]


def listed_seqs(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'data-seq="(\d+)"', page)]


def test_every_export_is_listed_and_the_filters_narrow_it(admin: Browser, console: ConsoleHub) -> None:
    page = admin.get("/shared").text
    assert sorted(listed_seqs(page)) == console.exports
    # Each export names the version of the rule it left under.
    assert page.count("<td>v1 <code") == len(console.exports)
    district = listed_seqs(admin.get("/shared", params={"consumer": "district"}).text)
    assert len(district) == 2 and set(district) < set(console.exports)
    assert listed_seqs(admin.get("/shared", params={"feed": FEED}).text) == sorted(console.exports, reverse=True)
    assert listed_seqs(admin.get("/shared", params={"feed": "env.air_quality_hourly"}).text) == []
    assert listed_seqs(admin.get("/shared", params={"from": "2000-01-01", "to": "2000-01-02"}).text) == []
    assert admin.get("/shared", params={"from": "not-a-date"}).status_code == 422


@pytest.mark.parametrize("consumer", ["district", "public_security"])
@pytest.mark.parametrize("page_index", [0, 1])
def test_an_export_shows_exactly_the_rows_the_consumer_received(
    admin: Browser, console: ConsoleHub, consumer: str, page_index: int
) -> None:
    seq = sorted(listed_seqs(admin.get("/shared", params={"consumer": consumer}).text))[page_index]
    page = admin.get(f"/shared/{seq}").text
    assert 'id="confirmed"' in page
    received = console.received[consumer][page_index]
    fields = list(received[0])
    shown = table_values(page, "export-table")
    assert shown == [[str(row[f]) for f in fields] for row in received]


def test_an_entry_that_is_not_an_export_is_not_found(admin: Browser) -> None:
    assert admin.get("/shared/1").status_code == 404
    assert admin.get("/shared/999999").status_code == 404


def test_policies_show_treatments_fingerprints_and_what_changed(admin: Browser, console: ConsoleHub) -> None:
    page = admin.get("/policies").text
    from privacy.policy import load_policies

    policies_dir = console.hub.settings.policies_dir
    before = load_policies(policies_dir)["public_security"]
    assert before.fingerprint in page and "原样提供" in page
    path: Path = policies_dir / "public_security.yaml"
    original = path.read_text(encoding="utf-8")
    try:
        changed = yaml.safe_load(original)
        changed["version"], changed["retention_days"] = 2, 60
        del changed["feeds"][FEED]["fields"]["exits"]
        path.write_text(yaml.safe_dump(changed, allow_unicode=True), encoding="utf-8")
        page = admin.get("/policies").text
    finally:
        path.write_text(original, encoding="utf-8")
    section = page.split('id="policy-public_security"', 1)[1].split("</section>", 1)[0]
    # Who saw each version, where the rule changed and how, all named for people.
    assert f"控制台：{ADMIN}" in section and "命令行" in section
    retention = '<span class="where" title="retention_days">接收方承诺保存期限（天）</span>'
    assert f"{retention}: <del>30</del> → <ins>60</ins>" in section
    exits = f'<span class="where" title="feeds.{FEED}.fields.exits">车辆进出流量（小时） › 出场车次</span>'
    assert f"{exits}: <del>原样提供</del> → <ins>—</ins>" in section
    # Back to the original rule: that is a change too, and the history says so.
    section = admin.get("/policies").text.split('id="policy-public_security"', 1)[1].split("</section>", 1)[0]
    assert f"{retention}: <del>60</del> → <ins>30</ins>" in section
    assert section.count(f"控制台：{ADMIN}") == 2


def test_the_policy_diff_names_each_change() -> None:
    before = {"version": 1, "feeds": {"f": {"fields": {"a": "keep", "b": {"op": "generalise", "to": "hour"}}}}}
    after = {"version": 2, "feeds": {"f": {"fields": {"a": "drop", "b": {"op": "generalise", "to": "day"}}, "k": 5}}}
    changes = {c.where: (c.before, c.after) for c in diff(before, after)}
    assert changes == {
        "version": ("1", "2"),
        "feeds.f.fields.a": ("keep", "drop"),
        "feeds.f.fields.b": ('{"op": "generalise", "to": "hour"}', '{"op": "generalise", "to": "day"}'),
        "feeds.f.k": (None, "5"),
    }


def test_consent_shows_households_per_function_and_withdrawals(admin: Browser) -> None:
    page = admin.get("/consent").text
    assert table_rows(page, "consent")[0] == ["户内烟感与燃气监测", "0", "1"]
    withdrawal = table_rows(page, "withdrawals")[0]
    assert withdrawal[2:4] == ["户内烟感与燃气监测", "社区管理平台"] and "下次发布" in withdrawal[4]
    assert "h" * 16 not in page  # the household's token never shows


def test_audit_page_shows_the_chain_intact(admin: Browser) -> None:
    page = admin.get("/audit").text
    assert 'id="chain-status">完整' in page.replace('class="ok-box" ', "")
    assert 'href="/admin/audit/archive"' in page


def test_overview_has_server_drawn_charts(admin: Browser, console: ConsoleHub) -> None:
    state, original = console.hub.app.state, console.hub.app.state.now
    # "Today" is the day of the fixture's loads, whatever the clock says when this runs.
    state.now = lambda: console.loaded_at
    try:
        page = admin.get("/").text
    finally:
        state.now = original
    assert page.count('<svg class="chart"') >= 1
    assert ">区数据办<" in page and ">公安<" in page and ">车辆进出流量（小时）<" in page
    assert ">机动车道闸</text>" in page and ">环境监测</text>" in page and ">480</text>" in page


def test_english_is_one_click_away(admin: Browser) -> None:
    switched = admin.get("/lang/en", params={"next": "/admin/audit"})
    assert switched.headers["location"] == "/admin/audit"
    page = admin.get("/audit").text
    assert "Hash-chain verification" in page and '<html lang="en">' in page
    admin.get("/lang/zh")
    assert "哈希链校验" in admin.get("/audit").text


def test_failing_providers_are_named_by_their_error_only(admin: Browser, console: ConsoleHub) -> None:
    # Providers are imported directly now (issue 15: no importlib strings), so none is "absent".
    def alarm_list(settings: object) -> None:
        raise RuntimeError("boom: 沪A12345")

    # A provider that fails is named by its error's type only: a message may quote a value.
    assert overview.provided(alarm_list, None) == overview.Provided(True, [], "RuntimeError")
    page = admin.get("/quality").text
    if not overview.alarms(console.hub.settings).available:
        assert 'id="alarms-absent"' in page


def test_charts_escape_labels() -> None:
    svg = bar_chart("t", [("<script>", 3), ("b", 0)], "none")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert str(bar_chart("t", [], "none")) == '<p class="empty">none</p>'


def test_alarms_show_lifecycle_and_response_times(
    admin: Browser, console: ConsoleHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    alarm = {
        "alarm_id": "a-1", "community_id": "music-square", "family": "home-safety", "category": "smoke",
        "severity": "critical", "state": "acknowledged", "raised_at": "2026-11-24T01:00:00+08:00",
        "acknowledged_at": "2026-11-24T01:02:05+08:00", "acknowledged_by": "public_security",
        "cleared_at": None, "response_seconds": 125, "escalated": False, "building": "7",
    }  # fmt: skip
    from warehouse import alarm_history

    monkeypatch.setattr(
        alarm_history, "alarm_list", lambda settings: [alarm, alarm | {"alarm_id": "a-2", "state": "cleared"}]
    )
    assert 'id="open-alarms">1<' in admin.get("/").text
    rows = table_rows(admin.get("/quality").text, "alarms")
    assert rows[0][:5] == ["a-1", "户内安全", "烟雾", "紧急", "已确认"]
    assert "125" in rows[0] and "公安" in rows[0] and "7" in rows[0]
    assert "2026-11-24 01:00" in rows[0]  # Shanghai time
    assert rows[1][4] == "已解除"


def test_a_page_found_from_the_consumers_earlier_pages_and_a_wrong_digest_shown(
    console: ConsoleHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from api.admin import shared
    from schemas.feeds import load_feeds

    settings = console.hub.settings
    monkeypatch.setattr(shared, "RENDER_BUDGET", 1)  # no scan: only the likely offsets are tried
    exports, _ = shared.list_exports(settings, shared.ExportFilter(consumer="district"))
    second = min(exports, key=lambda e: -e.seq)
    assert shared.export_rows(settings, second, load_feeds()[FEED]).confirmed is True
    forged = replace(second, response_digest="sha-256=:AAAA:")
    result = shared.export_rows(settings, forged, load_feeds()[FEED])
    assert result.confirmed is False and len(result.rows) == second.rows


def test_the_drill_down_shows_a_bounded_page_of_rows_and_pages_on(
    admin: Browser, console: ConsoleHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17: one page of rows is rendered at a time (SHOWN_ROWS), the rest behind a link."""
    from api.admin import shared

    monkeypatch.setattr(shared, "SHOWN_ROWS", 3)
    seq = sorted(listed_seqs(admin.get("/shared", params={"consumer": "public_security"}).text))[0]
    received = console.received["public_security"][0]  # six rows
    fields = list(received[0])
    first = admin.get(f"/shared/{seq}").text
    assert table_values(first, "export-table") == [[str(row[f]) for f in fields] for row in received[:3]]
    assert 'id="next-rows"' in first
    second = admin.get(f"/shared/{seq}", params={"rows_page": 1}).text
    assert table_values(second, "export-table") == [[str(row[f]) for f in fields] for row in received[3:6]]
    assert 'id="next-rows"' not in second


def test_the_quality_page_lists_the_ngsi_ld_dead_letters(admin: Browser, console: ConsoleHub) -> None:
    from peers.ngsi_ld.batch import DeadLetter
    from peers.ngsi_ld.client import EntityError
    from peers.ngsi_ld.store import PushStore

    entity = {"id": "urn:ngsi-ld:Streetlight:music-square:SL9", "type": "Streetlight", "status": "ok"}
    error = EntityError(entity["id"], "BadRequestData", 400, "invalid attribute name")
    PushStore(console.hub.settings.control_url, "district").add_dead([DeadLetter(entity, error, 1)], "upsert", None)
    assert overview.push_dead_letters(console.hub.settings).error is None
    rows = table_rows(admin.get("/quality").text, "dead-letters")
    assert [row[1:] for row in rows] == [
        ["区数据办", "更新推送", "—", entity["id"], "Streetlight", "BadRequestData", "400", "1"]
    ]


def test_policies_show_the_legal_basis_of_every_in_home_path(admin: Browser, console: ConsoleHub) -> None:
    """Issue 16 item 3: per consumer and path (feed or live relay), each in-home category's basis."""
    from kernel.settings import REPO_ROOT

    path: Path = console.hub.settings.policies_dir / "district.yaml"
    original = path.read_text(encoding="utf-8")
    try:
        path.write_text((REPO_ROOT / "config" / "policies" / "district.yaml").read_text(encoding="utf-8"))
        page = admin.get("/policies").text
    finally:
        path.write_text(original, encoding="utf-8")
    section = page.split('id="basis-district"', 1)[1].split("</table>", 1)[0]
    rows = {key: basis for basis, key in re.findall(r'<tr class="basis-([a-z_]+)" data-key="([^"]+)">', section)}
    # The care feed goes on consent only; a live smoke alarm on vital interest, an SOS on consent.
    assert rows["feed:care.elderly_daily/*"] == "consent"
    assert rows["relay:district/smoke"] == "vital_interest"
    assert rows["relay:district/sos"] == "consent"
    assert "住户同意" in section and "重大利益（生命安全）" in section and "居家养老看护服务" in section
