"""The console speaks to admins in their language (issue 19): every page, crawled over real
HTTP as a signed-in admin, shows in Chinese no untranslated key and no English name of a
feed, field, stream, consumer, treatment or status, and in English no Chinese (but the
switch back to 中文); times are Shanghai time, money is yuan, treated values are explained.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from api.admin import i18n
from api.admin.labels import Labels
from kernel.settings import REPO_ROOT
from schemas.contract import load_contract
from schemas.feeds import load_feeds
from tests.api.admin.console import ADMIN, Browser, ConsoleHub

LINK = re.compile(r'href="/admin(/[^"#]*)"')
NOT_PAGES = ("/logout", "/lang/", "/static/", "/audit/archive")
MAX_PAGES = 60
CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")
SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
DOTTED = re.compile(r"\b[a-z]+\.[a-z_]+\b")
TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*")
ENGLISH_PHRASE = re.compile(r"\b[A-Za-z]{3,}(?: +[A-Za-z]{3,})+\b")
# What may stay in Latin letters on a Chinese page: the product's name, formats' proper names.
ZH_ALLOWED_PHRASES = {"Neuron Hub", "neuron audit verify"}  # the product, a command to type
# On an English page: the switch to Chinese, named in Chinese.
EN_ALLOWED_CJK = {"中文"}
STATUSES = {"ok", "warn", "fail", "stale", "raised", "acknowledged", "cleared", "escalated"}
OPERATORS = {"keep", "drop", "pseudonymise", "mask", "generalise", "seal_to", "aggregate", "encrypt_to"}


class VisibleText(HTMLParser):
    """The text a reader sees: text nodes outside <head>, <script> and <style> (and, with
    `words_only`, outside <code>: key ids and fingerprints are to be copied, not read)."""

    def __init__(self, words_only: bool = False) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0
        self.skipped = ("head", "script", "style", "title", *(("code",) if words_only else ()))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.skipped:
            self.hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.skipped:
            self.hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden and data.strip():
            self.parts.append(data.strip())


def visible(page: str, words_only: bool = False) -> str:
    parser = VisibleText(words_only)
    parser.feed(page)
    return "\n".join(parser.parts)


def identifiers() -> set[str]:
    """Every English name the console must not show on a Chinese page."""
    names = set(STATUSES | OPERATORS | {"district", "public_security", "open_data"})
    for name, feed in load_feeds().items():
        names.add(name)
        names.update(feed.field_names())
        for stream in feed.sources:
            names.add(stream)
            names.update(f.name for f in load_contract(stream).fields)
    return {n for n in names if len(n) > 1}


def crawl(browser: Browser, seeds: list[str]) -> Iterator[tuple[str, str]]:
    """(path, HTML) of every console page reachable from `seeds`, each once."""
    queue, seen = list(seeds), set(seeds)
    while queue and len(seen) <= MAX_PAGES:
        path = queue.pop(0)
        response = browser.get(path)
        assert response.status_code == 200, (path, response.status_code)
        yield path, response.text
        for found in LINK.findall(response.text):
            link = found.replace("&amp;", "&")
            if not link.startswith(NOT_PAGES) and link not in seen:
                seen.add(link)
                queue.append(link)


@pytest.fixture
def admin(browser: Browser) -> Browser:
    browser.sign_in(ADMIN)
    return browser


def pages_in(admin: Browser, console: ConsoleHub, language: str) -> list[tuple[str, str]]:
    admin.get(f"/lang/{language}")
    seeds = ["/", *(f"/shared/{seq}" for seq in console.exports)]
    return list(crawl(admin, seeds))


def test_every_zh_page_names_things_in_chinese(admin: Browser, console: ConsoleHub) -> None:
    i18n.MISSING.clear()
    forbidden = identifiers()
    pages = pages_in(admin, console, "zh")
    assert {"/", "/shared", "/policies", "/consumers", "/audit", "/consent", "/quality"} <= {p for p, _ in pages}
    problems = []
    for path, page in pages:
        text = visible(page, words_only=True)
        english = {t for t in TOKEN.findall(text) if t in forbidden}
        english |= set(SNAKE.findall(text)) | set(DOTTED.findall(text))
        english |= {p for p in ENGLISH_PHRASE.findall(text) if p not in ZH_ALLOWED_PHRASES}
        if english:
            problems.append(f"{path}: {sorted(english)}")
    assert problems == [], "\n".join(problems)
    assert not i18n.MISSING, f"untranslated keys: {sorted(i18n.MISSING)}"


def test_every_en_page_is_in_english(admin: Browser, console: ConsoleHub) -> None:
    i18n.MISSING.clear()
    try:
        pages = pages_in(admin, console, "en")
    finally:
        admin.get("/lang/zh")
    problems = []
    for path, page in pages:
        # The CSV download is linked from the log page and crawled too: not a page, but its
        # headers and cells must be English all the same (checked below, like a page's text).
        assert '<html lang="en">' in page or path.startswith("/audit/log.csv"), path
        text = visible(page)
        for allowed in EN_ALLOWED_CJK:
            text = text.replace(allowed, "")
        chinese = sorted({line for line in text.splitlines() if CJK.search(line)})
        if chinese:
            problems.append(f"{path}: {chinese}")
    assert problems == [], "\n".join(problems)
    assert not i18n.MISSING, f"untranslated keys: {sorted(i18n.MISSING)}"


def test_an_export_is_shown_in_local_time_yuan_and_explained(admin: Browser, console: ConsoleHub) -> None:
    seq = console.exports[0]
    page = admin.get(f"/shared/{seq}").text
    text = visible(page)
    assert "小时开始时间（上海时间）" in text and "停车收费合计（元）" in text
    assert "所有时间均为上海时间" in text and "金额单位为元" in text
    # The raw values stay in the page (data-value) for the comparison with what was received.
    assert re.search(r'data-value="\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00"', page)


def labels(language: str = "zh") -> Labels:
    return Labels(language, i18n.translator(language), REPO_ROOT / "config" / "policies", "Asia/Shanghai")


def test_a_day_starts_at_local_midnight_and_money_is_yuan() -> None:
    zh = labels()
    # The first row of a 2026-12-07 export: 16:00 UTC the day before.
    first = datetime(2026, 12, 6, 16, 0, tzinfo=UTC)
    assert zh.value("traffic.vehicle_flow_hourly", "hour_start", first) == "2026-12-07 00:00"
    assert zh.value("traffic.vehicle_flow_hourly", "hour_start", "2026-12-06T16:00:00+00:00") == "2026-12-07 00:00"
    assert zh.value("traffic.vehicle_flow_hourly", "charges_fen", 123456) == "1,234.56"
    assert zh.value("traffic.vehicle_flow_hourly", "charges_fen", 5) == "0.05"
    assert zh.field("traffic.vehicle_flow_hourly", "charges_fen") == "停车收费合计（元）"
    assert labels("en").field("traffic.vehicle_flow_hourly", "hour_start") == "Start of the hour (Shanghai time)"


def test_consumers_treatments_and_legal_bases_come_from_the_policies() -> None:
    zh, en = labels(), labels("en")
    assert [zh.consumer(c) for c in ("district", "public_security", "open_data")] == ["区数据办", "公安", "开放数据"]
    assert en.consumer("public_security") == "Public security"
    sealed = zh.treatment("public_security", "traffic.vehicle_passes", "plate_no")
    assert sealed.short == "密封给公安" and "私钥" in sealed.explained
    assert en.treatment("public_security", "traffic.vehicle_passes", "plate_no").short == "sealed to Public security"
    assert zh.explain("district", {"op": "generalise", "to": "building"}).short == "已泛化到楼栋"
    assert zh.explain("district", {"op": "pseudonymise"}).short == "假名"
    assert zh.value("traffic.vehicle_passes", "plate_no", "nhs2.k1.QUJDREVGR0g", "seal_to").startswith("〔密文〕nhs2.")
    policy = zh.policies()["district"]
    assert "个人信息保护法" in zh.legal_basis(policy) and "PIPL" in en.legal_basis(policy)


def test_audit_entries_name_resources_outcomes_and_functions_in_words() -> None:
    zh, en = labels(), labels("en")
    assert zh.resource("/.well-known/jwks.json") == "本中心的公钥集"
    assert zh.resource("/v1/feeds/traffic.vehicle_flow_hourly/records?cursor&limit") == "“车辆进出流量（小时）”的记录"
    assert en.resource("/v1/feeds") == "catalogue of feeds" and zh.resource("/v1/unknown") == "其他接口"
    assert [zh.word("outcome", o) for o in ("ok", "forbidden", "withdrawn")] == ["成功", "无权访问", "撤回"]
    assert zh.function("smoke_gas") == "户内烟感与燃气监测" and zh.actor("hub") == "本中心（自动）"
    assert zh.word("outcome", "new_outcome") == "new_outcome"  # a code no catalog names yet shows as it is


TEMPLATE_KEY = re.compile(r"""\bt\(\s*['"]([a-z_]+\.[a-z_0-9\-]+)['"]""")


def test_every_literal_key_is_in_both_catalogs() -> None:
    zh, en = i18n.catalog("zh"), i18n.catalog("en")
    assert set(zh) == set(en), "the catalogs differ"
    folder = Path(i18n.__file__).parent
    sources = [*folder.glob("templates/*.html"), *folder.glob("*.py")]
    found = {key for path in sources for key in TEMPLATE_KEY.findall(path.read_text(encoding="utf-8"))}
    used = {key for key in found if not key.endswith(("_", "."))}  # prefixes of keys made at run time
    assert used, "no keys found"
    assert sorted(k for k in used if not (k in zh or k in i18n.MESSAGES)) == []


def test_quarantine_reasons_and_actors_are_named_for_people() -> None:
    zh, en = labels(), labels("en")
    assert zh.reason("vehicle_passes", "plate_no: is missing") == "车牌号：缺失"
    assert en.reason("vehicle_passes", "plate_no: is missing") == "Licence plate: is missing"
    reasons = {"plate_no: is missing": 3, "plate_no: is not unique": 1}
    assert zh.provided("quarantined_by_reason", reasons, {"stream": "vehicle_passes"}) == (
        "车牌号：缺失（3 行）、车牌号：不唯一（1 行）"
    )
    assert [zh.actor(a) for a in ("cli", "console:alice", "district")] == ["命令行", "控制台：alice", "区数据办"]
    assert zh.where("district", "feeds.traffic.vehicle_flow_hourly.k") == "车辆进出流量（小时） › 最小格子 k"
    assert zh.setting("district", "feeds.f.fields.x", '{"op": "generalise", "to": "building"}') == "已泛化到楼栋"


def render_export(language: str) -> str:
    """The export page of a public-security pull of vehicle passes (plate sealed), rendered
    with the real policies, as the console would render it."""
    from api.admin.shared import Export, ExportRows
    from api.admin.web import BASE, cell, templates

    fields = ["day", "pass_time", "gate_code", "direction", "vehicle_type", "new_energy", "plate_no"]
    export = Export(
        seq=7, at=datetime(2026, 12, 6, 16, 30, tzinfo=UTC), consumer="public_security",
        feed="traffic.vehicle_passes", path="/v1/feeds/traffic.vehicle_passes/records", rows=1, fields=fields,
        partitions=[{"seq": 1, "partition": "community_id=music-square/day=2026-12-07", "version": 1, "rows": 1}],
        policy_fingerprint=None, format="ndjson", response_digest=None,
    )  # fmt: skip
    row = {
        "day": "2026-12-07", "pass_time": datetime(2026, 12, 6, 16, 0, 5, tzinfo=UTC), "gate_code": "G1",
        "direction": "in", "vehicle_type": "visitor", "new_energy": True, "plate_no": "nhs2.k1.QUJDREVGR0hJSktM",
    }  # fmt: skip
    t = i18n.translator(language)
    context = {
        "t": t, "lang": language, "who": None, "base": BASE, "path": BASE + "/shared/7", "cell": cell,
        "labels": labels(language), "export": export, "result": ExportRows(export, fields, [row], None), "shown": 500,
    }  # fmt: skip
    return templates.env.get_template("export.html").render(**context)


def test_a_sealed_plate_is_marked_and_explained_next_to_its_column() -> None:
    i18n.MISSING.clear()
    page = render_export("zh")
    text = visible(page, words_only=True)
    assert "2026-12-07 00:30:00（上海时间）" in text  # when it was pulled
    assert "2026-12-07 00:00:05" in text and "进" in text and "访客车辆" in text and "是" in text
    assert "〔密文〕nhs2.k1.QUJD…" in text
    legend = visible(page.split('id="legend"', 1)[1])
    assert "车牌号" in legend and "密封给公安：" in legend and "私钥" in legend
    assert 'class="treated op-seal_to"' in page and 'data-value="nhs2.k1.QUJDREVGR0hJSktM"' in page
    assert not {t for t in TOKEN.findall(text) if t in identifiers()}
    en = visible(render_export("en"))
    assert "Sealed to Public security" in en and "(Shanghai time)" in en
    assert not i18n.MISSING


def test_freshness_reads_as_a_duration() -> None:
    assert labels().provided("freshness_seconds", 3 * 3600 + 5 * 60) == "3小时5分钟"
    assert labels("en").provided("freshness_seconds", 90_000) == "1 d 1 h"
