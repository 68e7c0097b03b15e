"""The scrubber as it ran in production before issue 16 (commit 592d9a3): its recognisers
and overlap rule, verbatim, with no roster (save_roster had no caller). bench/scrub_recall.py
measures it as the floor, on the same labelled set and in the same run as today's scrubber.
Never imported by product code.
"""
# ruff: noqa
# mypy: ignore-errors

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from stdnum import luhn
from stdnum.cn import ric
from stdnum.exceptions import ValidationError

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_L = "A-HJ-NP-Za-hj-np-z"  # plate letters: never I or O


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
    check: Callable[[str], bool] | None = None

    def find(self, text: str) -> list[Finding]:
        """Every occurrence in `text` that passes the check."""
        found = []
        contextual = "v" in self.pattern.groupindex
        for match in self.pattern.finditer(text):
            # With context words around it ("微信：…"), the value is group `v`; else the whole match.
            group = "v" if contextual and match.group("v") is not None else 0
            value = match.group(group)
            if value and (self.check is None or self.check(value)):
                found.append(Finding(match.start(group), match.end(group), self.kind))
        return found


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


# The province part of a region code (GB/T 2260): the first two digits of any real ID number.
PROVINCE_CODES = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46}
PROVINCE_CODES |= {50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82}


def valid_id18(value: str) -> bool:
    """An 18-digit resident ID number: province, check digit and birth date (python-stdnum)."""
    number = value.upper()
    if int(number[:2]) not in PROVINCE_CODES:
        return False
    try:
        born = ric.get_birth_date(number)
        return ric.calc_check_digit(number) == number[-1] and date(1900, 1, 1) <= born <= date.today()
    except (ValueError, ValidationError):
        return False


def valid_id15(value: str) -> bool:
    """A 15-digit ID number (issued before 1999): a province and a real birth date 19YYMMDD."""
    if int(value[:2]) not in PROVINCE_CODES:
        return False
    try:
        return date(1900 + int(value[6:8]), int(value[8:10]), int(value[10:12])) <= date(1999, 12, 31)
    except ValueError:
        return False


def valid_card(value: str) -> bool:
    """A bank card number: 16–19 digits with a valid Luhn check digit."""
    digits = _digits(value)
    return 16 <= len(digits) <= 19 and luhn.is_valid(digits)


_DATE = r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
RECOGNISERS: list[Recogniser] = [
    Recogniser(
        "ID_NUMBER",
        re.compile(rf"(?<![0-9A-Za-z])[1-9]\d{{5}}(?:18|19|20)\d{{2}}{_DATE}\d{{3}}[\dXx](?![0-9A-Za-z])"),
        valid_id18,
    ),
    Recogniser(
        "BANK_CARD",
        re.compile(r"(?<![\d-])(?:\d{4}[ -]){3}\d{4}(?:[ -]?\d{1,3})?(?![\d-])|(?<!\d)\d{16,19}(?!\d)"),
        valid_card,
    ),
    Recogniser("OLD_ID_NUMBER", re.compile(rf"(?<![0-9A-Za-z])[1-9]\d{{7}}{_DATE}\d{{3}}(?![0-9A-Za-z])"), valid_id15),
    Recogniser(
        "EMAIL",
        re.compile(
            r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
        ),
    ),
    Recogniser("MOBILE", re.compile(r"(?<![\d+])(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)")),
    Recogniser(
        "LANDLINE",
        re.compile(
            r"(?<!\d)(?:\+?86[ -]?)?(?:\(0?21\)|（0?21）|0?21[ -])[ ]?[2-9]\d{3}[ -]?\d{4}(?!\d)"
            r"|(?<![\d-])021[2-9]\d{7}(?!\d)"
            r"|(?:电话|座机|联系电话|办公室|Tel|TEL|tel)[:：]?\s*(?P<v>[2-9]\d{3}[ -]?\d{4})(?![\d-])"
        ),
    ),
    Recogniser(
        "WECHAT_ID",
        re.compile(
            r"(?<![A-Za-z0-9_-])wxid_[A-Za-z0-9]{8,24}(?![A-Za-z0-9_])"
            r"|(?:微信号?|微信ID|vx|VX|Vx|wx|WX|WeChat|wechat|weixin)\s*[:：]?\s*(?P<v>[A-Za-z][-_A-Za-z0-9]{5,19})(?![-_A-Za-z0-9])"
        ),
    ),
    Recogniser("OPENID", re.compile(r"(?<![A-Za-z0-9_-])o[A-Za-z0-9_-]{27}(?![A-Za-z0-9_-])")),
    Recogniser(
        "PLATE",
        re.compile(
            rf"[{PROVINCES}][{_L}][·•・.\- ]?(?:[DFdf][{_L}0-9]\d{{4}}|\d{{5}}[DFdf]|[{_L}0-9]{{5}})(?![A-Za-z0-9])"
        ),
    ),
    Recogniser(
        "ROOM",
        re.compile(
            r"(?<!\d)\d{1,3}\s*(?:号楼|栋|幢)\s*(?:\d{1,2}\s*单元\s*)?\d{3,4}\s*室?(?!\d)"
            r"|(?<!\d)\d{1,3}\s*号\s*(?:\d{1,2}\s*单元\s*)?\d{3,4}\s*室"
        ),
    ),
]
# When findings overlap, the earlier kind in RECOGNISERS wins (a checked kind beats a shape).
PRIORITY = {r.kind: i for i, r in enumerate(RECOGNISERS)}


def find_identifiers(text: str) -> list[Finding]:
    """The old scrubber's findings (no roster), non-overlapping, in order."""
    found = [f for r in RECOGNISERS for f in r.find(text)]
    found.sort(key=lambda f: (f.start, -(f.end - f.start), PRIORITY[f.kind]))
    chosen: list[Finding] = []
    for finding in found:
        if not chosen or finding.start >= chosen[-1].end:
            chosen.append(finding)
        elif finding.end > chosen[-1].end:
            chosen[-1] = Finding(chosen[-1].start, finding.end, chosen[-1].kind)
    return chosen
