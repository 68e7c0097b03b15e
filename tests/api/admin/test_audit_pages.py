"""The readable audit (issue 19, item 3), over real HTTP: the log filtered by kind, consumer,
feed and date, page by page, each entry with its chain proof and each export with its
checked rows; page views and static files never in the audit; the CSV safe for a
spreadsheet; the events that were not audited before (accounts, keys, policy changes) now
are, the chain still verifying; the monthly summary per consumer; the de-identification
report of every release; the district's receipts, verified."""

from __future__ import annotations

import csv
import hashlib
import html
import io
import os
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from typer.testing import CliRunner

from api.admin import audit_log, releases
from api.audit_export import verify_audit
from kernel.settings import load_settings
from neuron.cli import app
from privacy.deid_report import deidentification_report
from privacy.jws import sign_json
from privacy.keys import SigningKey, b64u
from privacy.policy import load_policies
from schemas.feeds import load_feeds
from tests.api.admin.console import ADMIN, Browser, ConsoleHub
from tests.api.hub import public_pem, send
from tests.api.lake import FEED, flow_rows, publish_table
from warehouse.audit import record_event
from warehouse.control import session_scope
from warehouse.models import AuditEntry, Partition

SEQS = re.compile(r'<tr data-seq="(\d+)" data-kind="([a-z_]+)"')


@pytest.fixture
def admin(browser: Browser) -> Browser:
    browser.sign_in(ADMIN)
    return browser


def listed(page: str) -> list[tuple[int, str]]:
    return [(int(seq), kind) for seq, kind in SEQS.findall(page)]


def entries(console: ConsoleHub) -> int:
    with session_scope(console.hub.settings.control_url) as session:
        return int(session.execute(select(func.count()).select_from(AuditEntry)).scalar_one())


def test_page_views_and_static_files_are_not_audit_entries(admin: Browser, console: ConsoleHub) -> None:
    before = entries(console)
    for path in ("/", "/shared", "/audit", "/audit/log", "/audit/monthly", "/audit/deid", "/audit/receipts"):
        assert admin.get(path).status_code == 200, path
    for asset in ("/static/console.css", "/static/audit.css", "/static/console.js"):
        assert admin.get(asset).status_code == 200, asset
    assert entries(console) == before


def test_the_log_lists_sharing_events_and_hides_reads_without_data(admin: Browser, console: ConsoleHub) -> None:
    shown = listed(admin.get("/audit/log").text)
    kinds = {kind for _, kind in shown}
    assert {seq for seq, kind in shown if kind == "export"} == set(console.exports)
    assert "access" not in kinds and "sign_in" in kinds
    # Chosen explicitly, the reads without data are there, and nothing else.
    access = listed(admin.get("/audit/log", params={"kind": "access"}).text)
    assert access and {kind for _, kind in access} == {"access"}
    both = listed(admin.get("/audit/log", params=[("kind", "export"), ("kind", "sign_in")]).text)
    assert {kind for _, kind in both} == {"export", "sign_in"}


def test_the_audit_page_counts_sharing_events_apart_from_reads(admin: Browser, console: ConsoleHub) -> None:
    page = admin.get("/audit").text
    assert (
        f'data-kind="export"><a href="/admin/audit/log?kind=export">数据导出</a>: <strong>{len(console.exports)}<'
        in page
    )
    assert 'data-kind="access">' in page


def test_the_log_filters_by_consumer_feed_and_local_days(admin: Browser, console: ConsoleHub) -> None:
    district = listed(admin.get("/audit/log", params={"consumer": "district", "kind": "export"}).text)
    assert len(district) == 2 and {s for s, _ in district} < set(console.exports)
    by_feed = listed(admin.get("/audit/log", params={"feed": FEED}).text)
    assert {s for s, k in by_feed if k == "export"} == set(console.exports)
    assert listed(admin.get("/audit/log", params={"feed": "env.air_quality_hourly"}).text) == []
    today = datetime.now(ZoneInfo(console.hub.settings.timezone)).date()
    in_range = {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1)), "kind": "export"}
    assert len(listed(admin.get("/audit/log", params=in_range).text)) == len(console.exports)
    assert listed(admin.get("/audit/log", params={"from": "2000-01-01", "to": "2000-01-02"}).text) == []
    assert admin.get("/audit/log", params={"from": "yesterday"}).status_code == 422


def test_the_log_pages_newest_first(console: ConsoleHub) -> None:
    settings = console.hub.settings
    wanted = audit_log.LogFilter(kinds=("export",))
    first, more = audit_log.list_entries(settings, wanted, limit=2)
    second, _ = audit_log.list_entries(settings, audit_log.LogFilter(kinds=("export",), page=1), limit=2)
    assert more and [e.seq for e in first + second] == sorted(console.exports, reverse=True)


def test_each_entry_links_to_its_proof(admin: Browser, console: ConsoleHub) -> None:
    page = admin.get("/audit/log", params={"kind": "export"}).text
    seq = console.exports[0]
    assert f'href="/admin/shared/{seq}"' in page and f'href="/admin/audit/log/{seq}"' in page
    proof = admin.get(f"/audit/log/{seq}").text
    assert 'class="proof-ok" id="proof-hashes"' in proof and 'class="proof-ok" id="proof-back"' in proof
    assert f'href="/admin/shared/{seq}"' in proof  # the export's rows, re-rendered and checked
    assert 'id="confirmed"' in admin.get(f"/shared/{seq}").text
    assert admin.get("/audit/log/99999999").status_code == 404
    # Told in words, with the raw JSON below: exactly what was hashed, so an auditor can recompute it.
    assert "访问的资源" in proof and "的记录" in proof and "提供的字段" in proof
    prev_hash = re.search(r"上一条哈希</dt><dd><code>([0-9a-f]{64})</code>", proof)
    entry_hash = re.search(r"条目哈希</dt><dd><code>([0-9a-f]{64})</code>", proof)
    raw = re.search(r'<pre class="raw" id="entry-raw"><code>(.*?)</code></pre>', proof, re.S)
    assert prev_hash and entry_hash and raw
    hashed = prev_hash[1].encode() + html.unescape(raw[1]).encode()
    assert hashlib.sha256(hashed).hexdigest() == entry_hash[1]


def test_csv_of_the_filtered_view_is_safe_for_spreadsheets(admin: Browser, console: ConsoleHub) -> None:
    settings = console.hub.settings
    record_event(settings.control_url, actor="=HYPERLINK(1)", action="console_confirm", outcome="refused")
    response = admin.get("/audit/log.csv", params={"kind": "key"})
    assert response.headers["content-type"].startswith("text/csv")
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")  # Excel shows the Chinese
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0][:3] == ["序号", "时间", "类型"]
    assert any(row[3] == "'=HYPERLINK(1)" for row in rows[1:])
    assert not any(cell.startswith(("=", "+", "@")) for row in rows for cell in row)
    exports = list(csv.reader(io.StringIO(admin.get("/audit/log.csv", params={"kind": "export"}).text[1:])))
    assert sorted(int(row[0]) for row in exports[1:]) == console.exports
    # For the owners' meeting: consumers by display name, the feed by its title, outcomes in words.
    consumers = load_policies(settings.policies_dir)
    assert {row[4] for row in exports[1:]} <= {p.display_name.zh for p in consumers.values() if p.display_name}
    assert {row[7] for row in exports[1:]} == {load_feeds()[FEED].title.zh}
    assert {row[6] for row in exports[1:]} == {"成功（HTTP 200）"}
    admin.get("/lang/en")
    try:
        english = admin.get("/audit/log.csv", params={"kind": "export"})
    finally:
        admin.get("/lang/zh")
    assert (
        english.text.removeprefix("\ufeff").startswith("Seq,Time,Kind,") and load_feeds()[FEED].title.en in english.text
    )
    assert verify_audit(settings).ok


def test_a_printable_page_for_the_owners_meeting(admin: Browser) -> None:
    page = admin.get("/audit/log", params={"print": "1"}).text
    assert "/admin/static/audit.css" in page and "另存为 PDF" in page
    assert "@media print" in admin.get("/static/audit.css").text


runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith("NEURON_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NEURON_HOME", str(tmp_path))
    assert runner.invoke(app, ["init"]).exit_code == 0
    yield tmp_path


def test_account_and_key_changes_are_audited_and_the_chain_holds(home: Path) -> None:
    password = "a long enough password"
    assert (
        runner.invoke(app, ["admins", "add", "erin", "--role", "admin"], input=f"{password}\n{password}\n").exit_code
        == 0
    )
    assert runner.invoke(app, ["admins", "disable", "erin"]).exit_code == 0
    key = home / "district.pem"
    key.write_bytes(public_pem(Ed25519PrivateKey.generate()))
    added = runner.invoke(app, ["consumers", "add", "district", "--public-key", str(key)])
    assert added.exit_code == 0, added.output
    assert runner.invoke(app, ["consumers", "revoke", "district"]).exit_code == 0
    assert runner.invoke(app, ["keys", "rotate"]).exit_code == 0
    settings = load_settings()
    kinds = [(e.action, e.kind) for e in audit_log.list_entries(settings, audit_log.LogFilter())[0]]
    assert ("admin_added", "account") in kinds and ("admin_disabled", "account") in kinds
    assert ("key_registered", "key") in kinds and ("consumer_revoked", "key") in kinds
    assert ("keys", "key_rotation") in kinds
    verified = runner.invoke(app, ["audit", "verify"])
    assert verified.exit_code == 0 and "audit log intact" in verified.output


def test_a_policy_change_is_audited(admin: Browser, console: ConsoleHub) -> None:
    admin.get("/policies")  # records the versions in force
    changes = listed(admin.get("/audit/log", params={"kind": "policy"}).text)
    assert changes and {kind for _, kind in changes} == {"policy"}


def test_the_monthly_summary_says_what_left_for_each_consumer(admin: Browser, console: ConsoleHub) -> None:
    month = datetime.now(ZoneInfo(console.hub.settings.timezone)).strftime("%Y-%m")
    # One refusal: a feed the district is not granted.
    refused = send(console.hub.signed("/v1/feeds/care.elderly_daily/records", console.hub.identities["district"]))
    assert refused.status_code in (403, 404)
    page = admin.get("/audit/monthly", params={"consumer": "district", "month": month}).text
    section = page.split('data-consumer="district"', 1)[1]
    received = sum(len(rows) for rows in console.received["district"])
    assert f"本月共 {received} 行" in section
    assert re.search(r'class="num rows">' + str(received) + "<", section)
    assert "法律依据" in section and 'class="refusals">' in section
    empty = admin.get("/audit/monthly", params={"consumer": "district", "month": "2001-01"}).text
    assert "本月没有向该接收方提供数据" in empty
    assert admin.get("/audit/monthly", params={"month": "2026-13"}).status_code == 422


def test_the_deidentification_report_of_each_release(admin: Browser, console: ConsoleHub) -> None:
    settings, hub = console.hub.settings, console.hub
    feed, policy = load_feeds()[FEED], load_policies(settings.policies_dir)["district"]
    table = pa.Table.from_pylist(flow_rows(date(2026, 11, 25), 1, 3))
    table = table.select(policy.published_fields(feed))
    report = deidentification_report(feed, policy, table)
    key = hub.signing_key
    seq = _publish_with_report(settings, key, table, report)
    page = admin.get("/audit/deid", params={"feed": FEED, "consumer": "district"}).text
    row = page.split('data-version="9"', 1)[1].split("</tr>", 1)[0]
    assert "community_id=music-square/day=2026-11-25" in row and "已核验" in row
    assert report["legal_basis"] in row and 'class="num max-risk">' in row
    assert all(f["field"] in row for f in report["fields"])
    with session_scope(settings.control_url) as session:  # undone: the console hub is shared
        partition = session.get(Partition, seq)
        assert partition is not None
        (settings.lake_path / partition.path).unlink()
        session.delete(partition)


def _publish_with_report(settings, key, table, report) -> int:  # type: ignore[no-untyped-def]
    seq = publish_table(settings, key, "district", FEED, "community_id=music-square/day=2026-11-25", 9, table)
    with session_scope(settings.control_url) as session:
        partition = session.get(Partition, seq)
        assert partition is not None
        payload = {"feed": FEED, "consumer": "district", "version": 9, "deidentification": report}
        partition.manifest_jws = sign_json(payload, key)
    return seq


def district_key() -> tuple[SigningKey, dict[str, object]]:
    private = Ed25519PrivateKey.generate()
    now = datetime.now(UTC)
    key = SigningKey("putuo-receipts", private, now, now + timedelta(days=1))
    raw = private.public_key().public_bytes_raw()
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw), "kid": key.kid, "use": "sig", "alg": "Ed25519"}
    return key, {"keys": [jwk]}


def test_the_district_receipts_verified_and_set_against_what_was_published(admin: Browser, console: ConsoleHub) -> None:
    settings, hub = console.hub.settings, console.hub
    latest = hub.latest("district")
    with session_scope(settings.control_url) as session:
        sha = {p.seq: p.sha256 for p in session.scalars(select(Partition).where(Partition.consumer == "district"))}
    held, forged = latest[0], latest[1]
    claims = [{"partition": held.partition_key, "version": held.version, "sha256": sha[held.seq]}]
    claims.append(
        {"partition": forged.partition_key, "version": forged.version, "sha256": hashlib.sha256(b"x").hexdigest()}
    )
    payload = {
        "typ": releases.RECEIPT_TYPE, "district": "putuo", "hub": settings.community_id,
        "issued_at": "2026-12-07T02:00:00+00:00", "feeds": {FEED: {"partitions": claims}},
    }  # fmt: skip
    key, jwks = district_key()
    folder = releases.receipts_folder(settings)
    try:
        releases.keep_receipt(settings, "district", sign_json(payload, key), jwks)
        assert oct((folder / "district.jws").stat().st_mode)[-3:] == "600"
        page = admin.get("/audit/receipts").text
        section = page.split('data-consumer="district"', 1)[1]
        assert "签名已核验" in section
        assert section.count('data-status="held"') == 1 and section.count('data-status="mismatched"') == 1
        assert section.count('data-status="not_held"') == len(latest) - 2
        # Signed by another key: shown as not verifying, nothing of it believed.
        other, _ = district_key()
        releases.keep_receipt(settings, "district", sign_json(payload, other), jwks)
        section = admin.get("/audit/receipts").text.split('data-consumer="district"', 1)[1]
        assert "签名无法核验" in section and "data-status" not in section
    finally:
        for path in folder.glob("district.*"):
            path.unlink()
    assert 'id="no-receipts"' in admin.get("/audit/receipts").text
