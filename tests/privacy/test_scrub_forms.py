"""Issue 16, item 1: the free-text forms that passed the scrubber, one test each (each fails on
the scrubber before it), the look-alikes that must stay, recall on the hand-written set, and
`neuron scrub`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.scrub_recall import load, score
from neuron.cli import app
from privacy.keys import HubKeys, init_keys
from privacy.normalise import normalise
from privacy.roster import save_roster
from privacy.scrub import NameMatcher, find_identifiers, scrub_text
from tests.conftest import make_settings


def found(text: str) -> list[tuple[str, str]]:
    """(kind, the text it covers) of every finding, without a roster."""
    return [(f.kind, text[f.start : f.end]) for f in find_identifiers(text)]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        # Names with an honorific or a kinship word, and no roster.
        ("王先生说水管又漏了", "NAME", "王先生"),
        ("麻烦李阿姨开一下门", "NAME", "李阿姨"),
        ("找过老张也没用", "NAME", "老张"),
        ("联系小李，他在家", "NAME", "小李"),
        ("张师傅明天上午来吗", "NAME", "张师傅"),
        ("我妈王秀英一个人在家", "NAME", "王秀英"),
        ("业主罗淑珍说老人一个人在家", "NAME", "罗淑珍"),
        ("表扬楼组长潘桂兰阿姨", "NAME", "潘桂兰阿姨"),
        # Rooms in every Shanghai notation.
        ("3-2-501卫生间漏水", "ROOM", "3-2-501"),
        ("九号楼三单元五零一，跳闸了", "ROOM", "九号楼三单元五零一"),
        ("钥匙放在住五零一的邻居家", "ROOM", "五零一"),
        ("我家3栋501门锁坏了", "ROOM", "3栋501"),
        ("B座12楼走廊窗户碎了", "ROOM", "B座12楼"),
        ("12幢1203空调架锈了", "ROOM", "12幢1203"),
        ("楼上602一直往下滴水", "ROOM", "602"),
        # Full-width digits.
        ("电话１３７８８２１４５０６", "MOBILE", "１３７８８２１４５０６"),
        ("身份证号：３１０１０４１９６０１０２５３６２８", "ID_NUMBER", "３１０１０４１９６０１０２５３６２８"),
        # ID numbers in groups, with a lower-case x, and with a mistyped check digit.
        ("身份证310104 19620518 2030，名字李国庆", "ID_NUMBER", "310104 19620518 2030"),
        ("身份证310107-1968-0823-2024", "ID_NUMBER", "310107-1968-0823-2024"),
        ("身份证31010719880706251x", "ID_NUMBER", "31010719880706251x"),
        ("身份证110101199003074137丢了", "ID_NUMBER", "110101199003074137"),  # check digit should be 5
        # QQ numbers.
        ("加我QQ：397214856", "QQ", "397214856"),
        ("扣扣 2875510393，不常用微信", "QQ", "2875510393"),
        # Passports and other travel documents.
        ("护照号E58830127，已交派出所", "PASSPORT", "E58830127"),
        ("周敏的护照G23581246还能用吗", "PASSPORT", "G23581246"),
        ("港澳通行证号C72611093", "PASSPORT", "C72611093"),
        # Plates with a space, a dot, lower case, new energy.
        ("谁的车沪 A12345挡住消防通道了", "PLATE", "沪 A12345"),
        ("沪a12345车窗没关", "PLATE", "沪a12345"),
        ("沪A·D82715停了一个礼拜", "PLATE", "沪A·D82715"),
        ("沪AD12345是新能源", "PLATE", "沪AD12345"),
        # Phones written the ways people write them.
        ("手机+86 186 2170 3356", "MOBILE", "+86 186 2170 3356"),
        ("电话1391 6620 018", "MOBILE", "1391 6620 018"),
        ("打6254-8877就行", "LANDLINE", "6254-8877"),
        # WeChat ids, e-mail and bank cards.
        ("微信号: lxy_home88", "WECHAT_ID", "lxy_home88"),
        ("邮箱xueli1987＠163.com", "EMAIL", "xueli1987＠163.com"),
        ("卡号6222 0212 3456 7899", "BANK_CARD", "6222 0212 3456 7899"),  # a typo (no Luhn) after 卡号
    ],
)
def test_each_form_is_found_and_hidden(text: str, kind: str, value: str) -> None:
    assert (kind, value) in found(text)
    assert value not in scrub_text(text)


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("我家是2302，快递老放到2301门口", "ROOM", "2301"),  # a bare number shaped like the text's room
        ("903厨房的油烟管道坏了", "ROOM", "903"),  # a room before a part of the home
        ("楼上是五零二，天天半夜剁肉", "ROOM", "五零二"),
        ("家政阿姨桂兰明天不来了", "NAME", "桂兰"),  # a given name after a role word
        ("收旧家电的，淑芬 13817265540", "NAME", "淑芬"),  # a contact entry before a phone number
        ("找红姐拿团购的菜", "NAME", "红姐"),  # a 姐/哥 nickname
        ("谢谢禚女士送的月饼", "NAME", "禚女士"),  # a surname too rare for the list, before 女士
        ("请问慕容清到了没有", "NAME", "慕容清"),  # a compound surname wherever it stands
        ("业主单立新，电话找物业要", "NAME", "单立新"),  # a wordy surname after a role word
    ],
)
def test_the_forms_the_held_out_sets_missed_are_hidden(text: str, kind: str, value: str) -> None:
    """The classes the held-out sets missed (issue 16, third round), in other words than theirs:
    a finding of the kind covers the value (the segmenter may take a character more)."""
    start = text.index(value)
    end = start + len(value)
    assert any(f.kind == kind and f.start <= start and end <= f.end for f in find_identifiers(text)), found(text)
    assert value not in scrub_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "缴费成功，金额¥1,280.00，交易单号4200002216202612071234567890",
        "订单号202612071530228861，退款350元已原路返回",
        "物流单号6222021234567894，请注意查收",  # Luhn-valid, but an order reference
        "物业客服热线400-820-8820，燃气抢修962777，电力95598",
        "因管道维修，3号楼、5号楼明日9:00-15:00停水",
        "2026-12-07 14:30 在社区活动室开会，到会37人，同意29票",
        "小区总户数706户，常住人口1,865人",
        "取件码6-2-3308，验证码836251",
        "谁家的小黄狗在6号楼下面叫了一上午",
        "这张卡：请查收",
        "我家小孩初三了，该女士说的那位先生是谁",
        "共1202户，订单1203号，2025年的账单",
    ],
)
def test_look_alikes_stay(text: str) -> None:
    assert find_identifiers(text) == [], found(text)


def test_normalising_keeps_every_offset() -> None:
    text = "电话：１３９－１６６２－８８７０（王先生）"
    assert len(normalise(text)) == len(text) and normalise(text).startswith("电话:139-1662-8870(")


def test_a_roster_name_without_any_cue_is_found_only_with_the_roster() -> None:
    text = "翁敏明天来拿钥匙"
    assert scrub_text(text, NameMatcher(["翁敏"])) == "[NAME]明天来拿钥匙"


def test_recall_on_the_hand_written_set_meets_the_goal() -> None:
    """bench/scrub_recall.py's figures as a floor: ≥ 0.99 overall, ≥ 0.95 per kind, ≥ 0.90 kept."""
    rows = load()
    roster = NameMatcher({n for row in rows for n in row["roster"]})
    result = score(rows, lambda text: find_identifiers(text, roster))
    assert len(rows) >= 600
    assert result.recall() >= 0.99, result.missed
    assert all(result.recall(kind) >= 0.95 for kind in result.total), {k: result.recall(k) for k in result.total}
    assert result.keep_rate() >= 0.90


def test_neuron_scrub_reads_json_lines_and_writes_them_scrubbed(tmp_path: Path) -> None:
    hub = make_settings(tmp_path)
    init_keys(hub)
    save_roster(hub, HubKeys.load(hub), ["翁敏"])
    lines = [
        {"id": "r1", "text": "3-2-501漏水，找翁敏，电话139 1662 8870"},
        {"id": "r2", "text": "订单号202612071530228861，退款350元"},
    ]
    stdin = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    env = {"NEURON_HOME": str(tmp_path), "NEURON_STATE_DIR": "var", "NEURON_MASTER_SECRET": ""}
    result = CliRunner().invoke(app, ["scrub"], input=stdin, env=env)
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert out == [
        {"id": "r1", "text": "[ROOM]漏水，找[NAME]，电话[MOBILE]"},
        {"id": "r2", "text": "订单号202612071530228861，退款350元"},
    ]
    explained = CliRunner().invoke(app, ["scrub", "--no-roster", "--explain"], input=stdin, env=env)
    assert json.loads(explained.stdout.splitlines()[0])["found"][0] == {"kind": "ROOM", "start": 0, "end": 7}


def test_neuron_scrub_names_the_bad_line_not_its_content() -> None:
    result = CliRunner().invoke(app, ["scrub", "--no-roster"], input='{"id": 1, "text": "ok"}\n王先生13916628870\n')
    assert result.exit_code == 1
    assert "line 2" in result.output and "13916628870" not in result.output and "Traceback" not in result.output
