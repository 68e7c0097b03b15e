"""Chinese PII recognisers for free text (repair descriptions, circle posts, notices) and
for leak scans: each a compiled pattern and, where the identifier carries one, a check
(birth date, Luhn) that turns a shape into a finding.

They read normalised text (privacy/normalise.py: full-width digits and letters, dashes,
dots and spaces folded, one character for one), so "１３９ １６６２ ８８７０", "沪Ａ·１２３４５"
and "３１０１…" are matched by the same patterns as their ASCII forms.

Recall comes first — a missed ID number leaves the community, a false alarm only hides a
number. So an ID number is any 18-character run of the ID's shape (a province code and a
real birth date), in groups or not, *whatever its check digit*: a resident who mistypes
one digit is still identified by the other seventeen (issue 16). A bank card needs Luhn,
or the words "卡号/银行卡/账号" before it. Numbers that only look like identifiers stay:
a number right after 订单/单号/流水/交易号/发票/户号/表号/取件码… is an order or account
reference, not a person, and the property company's 400/800/95xxx/96xxx lines are public.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from stdnum import luhn

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼港澳使领学警挂"
_L = "A-HJ-NP-Za-hj-np-z"  # plate letters: never I or O
_S = r"[ \-]"  # a separator residents put in numbers (after normalisation)
_CN = "零〇一二两三四五六七八九十"  # Chinese numerals, as in 五零一 or 三号楼
# Words after which a number is a reference to a transaction or an account, not a person.
_REFERENCE = re.compile(
    r"(?:订单|单号|流水|交易|发票|运单|快递|户号|表号|编号|取件码|验证码|合同|工单|税号|代码|物流|条码|批号|密码|群号?)"
    r"[号码]?\s*[:：]?\s*$"
)


@dataclass(frozen=True)
class Finding:
    """One identifier found in a text: where, and of which kind."""

    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class Recogniser:
    """A kind of identifier: its pattern (group `v` is the value when there is context around it)."""

    kind: str
    pattern: re.Pattern[str]
    check: Callable[[str, str, int], bool] | None = None  # (value, text, start) → is it one?
    references: bool = False  # skip a value that follows an order/account word (_REFERENCE)

    def find(self, text: str) -> list[Finding]:
        """Every occurrence in `text` (normalised) that passes the check."""
        found = []
        contextual = "v" in self.pattern.groupindex
        for match in self.pattern.finditer(text):
            # With context words around it ("微信：…"), the value is group `v`; else the whole match.
            group = "v" if contextual and match.group("v") is not None else 0
            value, start = match.group(group), match.start(group)
            if not value:
                continue
            if self.references and _REFERENCE.search(text[max(0, start - 8) : start]):
                continue
            if self.check is None or self.check(value, text, start):
                found.append(Finding(start, match.end(group), self.kind))
        return found


def _digits(value: str) -> str:
    return re.sub(r"[^0-9Xx]", "", value).upper()


# The province part of a region code (GB/T 2260): the first two digits of any real ID number.
PROVINCE_CODES = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46}
PROVINCE_CODES |= {50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83}


def _born(year: int, month: int, day: int, latest: date) -> bool:
    try:
        return date(1900, 1, 1) <= date(year, month, day) <= latest
    except ValueError:
        return False


def id18_shaped(value: str, text: str = "", start: int = 0) -> bool:
    """An 18-character resident ID number: a province and a real birth date. The check digit
    is deliberately not required (a mistyped ID is still an ID); the shape alone rejects
    order numbers, phone pairs and dates run together."""
    number = _digits(value)
    if len(number) != 18 or "X" in number[:17] or int(number[:2]) not in PROVINCE_CODES:
        return False
    return _born(int(number[6:10]), int(number[10:12]), int(number[12:14]), date.today())


def valid_id15(value: str, text: str = "", start: int = 0) -> bool:
    """A 15-digit ID number (issued before 1999): a province and a real birth date 19YYMMDD."""
    if int(value[:2]) not in PROVINCE_CODES:
        return False
    return _born(1900 + int(value[6:8]), int(value[8:10]), int(value[10:12]), date(1999, 12, 31))


_CARD_WORDS = re.compile(r"(?:卡号|银行卡|账号|帐号|卡)\s*[:：]?\s*(?:是|为)?\s*$")


def bank_card(value: str, text: str = "", start: int = 0) -> bool:
    """A bank card number: 16–19 digits with a valid Luhn check digit, or any 16–19 digits
    right after 卡号/银行卡/账号 (a typo in a card number still names the account)."""
    digits = _digits(value)
    if "X" in digits or not 15 <= len(digits) <= 20:
        return False
    if _CARD_WORDS.search(text[max(0, start - 6) : start]):
        return True  # a digit typed twice or left out still names the account
    return 16 <= len(digits) <= 19 and luhn.is_valid(digits)


def mobile(value: str, text: str = "", start: int = 0) -> bool:
    """A mainland mobile number (11 digits from 13x–19x), with or without +86."""
    digits = _digits(value)
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return len(digits) == 11 and digits[0] == "1" and digits[1] in "3456789"


_DATE8 = re.compile(r"(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])")


def bare_landline(value: str, text: str = "", start: int = 0) -> bool:
    """A Shanghai number without its 021 prefix: eight digits from 2–6, but not a date."""
    return not _DATE8.fullmatch(_digits(value))


_ROOM_NUMBER = rf"(?:[1-9]\d{{2,3}}(?!\d)|[{_CN}]{{3,4}}(?![{_CN}]))"
# A number shaped like a flat: a floor (1–39) and a flat on it (01–12), as 501, 1203, 3302.
ROOM_SHAPED = r"(?:[1-9]|[1-3]\d)(?:0[1-9]|1[0-2])(?!\d)"
# Parts of a home and the people living in one, which a room number stands before.
_HOME_WORDS = (
    "卫生间|厕所|厨房|阳台|客厅|卧室|主卧|次卧|书房|房间|门口|大门|窗户|窗台|天花板|吊顶|地板|墙面|水管|马桶|空调外机"
    "|漏水|渗水|跳闸|租客|房东|住的|那户|这户|老人|阿姨|大爷|奶奶|爷爷|小孩|孩子"
)
_BUILDING = rf"(?:\d{{1,3}}|[{_CN}]{{1,3}})"
_UNIT = rf"(?:\d{{1,2}}|[{_CN}]{{1,2}})\s*单元\s*"
_QQ_WORDS = r"(?:QQ|qq|Qq|扣扣|企鹅|[Qq]号)"
_WECHAT_WORDS = r"(?:微信号?|微信ID|微信id|薇信|威信|[vV]信|vx|VX|Vx|wx|WX|WeChat|wechat|weixin)"
_PASSPORT_WORDS = r"(?:护照|通行证|台胞证|回乡证|旅行证|[Pp]assport)"

RECOGNISERS: list[Recogniser] = [
    Recogniser(
        "ID_NUMBER",
        # 6-8-4, 6-4-4-4, 6-6-6 or run together; after normalisation.
        re.compile(
            rf"(?<![0-9A-Za-z])[1-9]\d{{5}}{_S}?\d{{4}}{_S}?\d{{2}}{_S}?\d{{2}}{_S}?\d{{3}}[\dXx](?![0-9A-Za-z])"
        ),
        id18_shaped,
        references=True,
    ),
    Recogniser(
        "BANK_CARD",
        re.compile(
            rf"(?<![\d-])(?:\d{{4}}{_S}){{3}}\d{{4}}(?:{_S}?\d{{1,4}})?(?![\d-])|(?<![\d-])(?:\d{{4}}{_S}){{4}}\d{{2,4}}(?![\d-])"
            r"|(?<![\dA-Za-z])\d{15,20}(?![\dA-Za-z])"
        ),
        bank_card,
        references=True,
    ),
    Recogniser(
        "OLD_ID_NUMBER",
        re.compile(r"(?<![0-9A-Za-z])[1-9]\d{7}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}(?![0-9A-Za-z])"),
        valid_id15,
        references=True,
    ),
    Recogniser(
        "EMAIL",
        re.compile(
            r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
        ),
    ),
    Recogniser(
        "PASSPORT",
        re.compile(
            # A Chinese passport (E + 8 digits, E + letter + 7, G + 8) needs no context; any
            # other travel document (港澳通行证 C…, 台胞证, foreign passports) does.
            rf"(?<![0-9A-Za-z])(?:E[A-HJ-NP-Z]?|G){_S}?\d{{3,4}}{_S}?\d{{4}}(?![0-9A-Za-z])"
            rf"|{_PASSPORT_WORDS}(?:号码|号)?\s*[:：]?\s*(?:是|为)?\s*(?P<v>[A-Za-z]{{0,3}}{_S}?\d{{4}}{_S}?\d{{2,5}})(?![0-9A-Za-z])"
        ),
        lambda value, text, start: 7 <= len(re.sub(r"[ \-]", "", value)) <= 10,
    ),
    Recogniser(
        "QQ",
        re.compile(
            rf"{_QQ_WORDS}(?!群)(?:号码|号)?\s*[:：]?\s*(?:是|为)?\s*(?P<v>[1-9]\d{{4,11}})(?!\d)"
            r"|(?<![A-Za-z0-9])(?P<mail>[1-9]\d{4,11})(?=@qq\.com)"
        ),
    ),
    Recogniser(
        "WECHAT_ID",
        re.compile(
            r"(?<![A-Za-z0-9_-])wxid_[A-Za-z0-9]{8,24}(?![A-Za-z0-9_])"
            rf"|{_WECHAT_WORDS}\s*[:：]?\s*(?:是|为|号)?\s*(?P<v>[A-Za-z][-_A-Za-z0-9]{{5,19}})(?![-_A-Za-z0-9@.])"
            # A lower-case handle with an underscore ("tangli_1984") is an account name
            # wherever it stands; no Chinese word or number is written that way.
            r"|(?<![A-Za-z0-9_.@-])[a-z][a-z0-9]{1,15}_[a-z0-9_]{2,15}(?![A-Za-z0-9_@.-])"
        ),
    ),
    Recogniser(
        "MOBILE",
        re.compile(rf"(?<![\d+])(?:\+?86{_S}?)?1{_S}?[3-9](?:{_S}?\d){{9}}(?!\d)"),
        mobile,
        references=True,
    ),
    Recogniser(
        "LANDLINE",
        re.compile(
            rf"(?<!\d)(?:\+?86{_S}?)?(?:\(0?21\)|0?21{_S}?)\s?[2-9]\d{{3}}{_S}?\d{{4}}(?!\d)"
            # Bare eight digits: not a group inside a longer run ("6222 0212 3456 7899").
            rf"|(?<![\d\-A-Za-z])(?<!\d )[2-6]\d{{3}}{_S}?\d{{4}}(?![\d\-A-Za-z])(?! \d)"
        ),
        lambda value, text, start: bare_landline(value),
        references=True,
    ),
    Recogniser("OPENID", re.compile(r"(?<![A-Za-z0-9_-])o[A-Za-z0-9_-]{27}(?![A-Za-z0-9_-])")),
    Recogniser(
        "PLATE",
        re.compile(
            rf"[{PROVINCES}]\s?[{_L}][·.\- ]?"
            rf"(?:[DFdf][·.\- ]?[{_L}0-9]\d{{4}}|\d{{5}}[DFdf]|[{_L}0-9]{{5}})(?![A-Za-z0-9])"
        ),
    ),
    Recogniser(
        "ROOM",
        re.compile(
            # 3号楼2单元501室, 3栋501, 12幢1203, 三号楼二单元五零一, 7号501, 12#1203
            rf"(?<![\d{_CN}]){_BUILDING}\s*(?:号楼|栋|幢|号|#)\s*(?:{_UNIT})?{_ROOM_NUMBER}\s*室?"
            # A座1805, B座12楼, B栋1203
            rf"|(?<![A-Za-z0-9])[A-Za-z]\s*(?:座|栋|幢)\s*(?:\d{{1,2}}\s*(?:楼|层)|{_ROOM_NUMBER}\s*室?)(?!\d)"
            # 3-2-501
            rf"|(?<![\d\-A-Za-z.:/])\d{{1,3}}-\d{{1,2}}-[1-9]\d{{2,3}}(?![\d\-])"
            # 501室; 楼上602, 隔壁1203, 住五零一; 802的, 501家
            rf"|(?<![\d{_CN}]){_ROOM_NUMBER}\s*室"
            rf"|(?:楼上|楼下|隔壁|对门|对面|住在|住|家是|放)(?:是|就是|的是)?\s*(?P<v>{_ROOM_NUMBER})"
            rf"|(?<![\d{_CN}.\-])[1-9]\d{{2,3}}(?=的|家|住户|业主|邻居)"
            # A room-shaped number (floor, then flat 01–12) before a part of a home or one who
            # lives there: "1203卫生间漏水", "1802租客", "702阳台".
            rf"|(?<![\d{_CN}.\-:/A-Za-z]){ROOM_SHAPED}(?=\s?(?:{_HOME_WORDS}))"
        ),
        references=True,
    ),
]
# When findings overlap, the earlier kind in RECOGNISERS wins (a checked kind beats a shape).
PRIORITY = {r.kind: i for i, r in enumerate(RECOGNISERS)}
