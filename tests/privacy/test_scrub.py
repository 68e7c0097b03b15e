"""The Chinese PII recognisers and the scrubber: cases per kind, and recall and precision
measured on the simulator's labelled set."""

from __future__ import annotations

import pyarrow as pa
import pytest

from privacy.measure import measure
from privacy.scrub import NameMatcher, find_identifiers, scrub_column, scrub_text
from simulator.community import Community
from simulator.free_text import labelled_texts

NAMES = NameMatcher(["王建国", "李秀英", "张伟"])


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("身份证110101199003074135丢了", ["ID_NUMBER"]),  # valid check digit and birth date
        ("身份证110101199003074137丢了", ["ID_NUMBER"]),  # a wrong check digit is still an ID (issue 16)
        ("身份证110101199013074131丢了", []),  # no 13th month
        ("老证号310107560312123", ["OLD_ID_NUMBER"]),  # 15 digits, born 1956-03-12
        ("订单号202611201234567", []),  # 15 digits, but "20" is no province
        ("卡号6222 0212 3456 7899 ", ["BANK_CARD"]),  # fails Luhn, but 卡号 says what it is
        ("编号6222 0212 3456 7899 ", []),  # fails Luhn, and no card word
        ("卡号6222021234567894", ["BANK_CARD"]),
        ("卡号 6222 0212 3456 7894，", ["BANK_CARD"]),
        ("电话13812345678", ["MOBILE"]),
        ("电话138-1234-5678或+86 139 1234 5678", ["MOBILE", "MOBILE"]),
        ("号码12345678901", []),  # no mobile starts 12
        ("物业电话021-62541234，座机6254 1234", ["LANDLINE", "LANDLINE"]),
        ("(021)62541234", ["LANDLINE"]),
        ("沪A12345挡路了，沪A·D12345也是，苏E 9F123", ["PLATE", "PLATE", "PLATE"]),
        ("沪AD12345是新能源", ["PLATE"]),
        ("发到zhang.wei88@163.com", ["EMAIL"]),
        ("加微信：zhangwei_1988，或wxid_ab12cd34ef56gh", ["WECHAT_ID", "WECHAT_ID"]),
        ("openid oMSQabcdefghijklmnopqrstuvwx", ["OPENID"]),
        ("3号楼2单元302室漏水，12号502室也是", ["ROOM", "ROOM"]),
        ("3号楼停水", []),  # a building alone is not a room
        ("找王建国或者李秀英，张伟也行", ["NAME", "NAME", "NAME"]),
        ("2026年11月20日 9:00-15:00 共350元", []),
    ],
)
def test_recognisers(text: str, kinds: list[str]) -> None:
    assert [f.kind for f in find_identifiers(text, NAMES)] == kinds


def test_scrubbing_replaces_each_identifier_with_a_typed_placeholder() -> None:
    text = "3号楼2单元302室王建国，电话138-1234-5678，身份证110101199003074135，车沪A12345"
    assert scrub_text(text, NAMES) == "[ROOM][NAME]，电话[MOBILE]，身份证[ID_NUMBER]，车[PLATE]"
    column = pa.array([text, None, "没有个人信息"])
    assert scrub_column(column, ["王建国"]).to_pylist() == [scrub_text(text, NAMES), None, "没有个人信息"]


def test_recall_and_precision_on_the_simulators_labelled_set() -> None:
    community = Community()
    texts = labelled_texts(3000, seed=11, community=community)
    result = measure(texts, NameMatcher({r.name for r in community.residents}))
    print({k: (round(result.recall(k), 4), round(result.precision(k), 4)) for k in result.kinds()})
    for kind in ("ID_NUMBER", "BANK_CARD"):  # checksum-bearing
        assert result.found[kind] > 100 and result.recall(kind) >= 0.99
    for kind in ("OLD_ID_NUMBER", "MOBILE", "LANDLINE", "PLATE", "EMAIL", "WECHAT_ID", "OPENID", "ROOM", "NAME"):
        assert result.recall(kind) >= 0.99, kind
    assert all(result.precision(k) >= 0.8 for k in result.kinds())


def test_every_community_identifier_in_the_labelled_set_is_gone_after_scrubbing() -> None:
    community = Community()
    texts = labelled_texts(1000, seed=5, community=community)
    scrubbed = scrub_column(pa.array([t.text for t in texts]), {r.name for r in community.residents}).to_pylist()
    truth = community.ground_truth()
    for original, clean in zip(texts, scrubbed, strict=True):
        for label in original.labels:
            assert original.text[label.start : label.end] not in clean
    joined = "\n".join(scrubbed)
    assert not [v for values in truth.values() for v in values if v in joined]
