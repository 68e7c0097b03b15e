"""Names of people in Chinese free text without a roster: relatives, visitors, workers and
property staff are on no register, and residents call each other 王先生, 李阿姨, 老张,
小李, 张师傅, or write "我妈王秀英", "业主罗淑珍", "承租人马俊".

Two finders, measured apart by bench/scrub_recall.py:
- patterns: a surname (the common single and compound ones) with an honorific or a
  title after it, 老/小/大 before it, or a kinship or role word before a full name;
- a word segmenter's person-name tags (jieba, offline, HMM on): the full names written
  with no cue at all ("翁敏明天来拿钥匙"). Only tokens that begin with a known surname are
  kept, so jieba's `nr` on a bare title ("阿姨") does not become a name.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from privacy.recognisers import Finding

NAME = "NAME"

_WORDS = yaml.safe_load((Path(__file__).parent / "names_zh.yaml").read_text(encoding="utf-8"))
COMPOUND_SURNAMES: list[str] = _WORDS["compound_surnames"].split()
SURNAMES: str = "".join(_WORDS["surnames"].split())
_HONORIFICS: list[str] = _WORDS["honorifics"].split()
_KIN: list[str] = _WORDS["cues"].split()
_NOT_NAMES: set[str] = set(_WORDS["not_names"].split())
# The most common surnames: 大 + one of these is a nickname (大刘); 大 + a rarer one is a word (大海).
_COMMON = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹"
# Surnames that are also everyday words after 老/小/大 (小区, 小时, 老公, 大家…): not names there.
_NOT_AFTER_PREFIX = set("区时学心公家人师板年婆伴乡实式虎鼠化旧大小朋孩伙吃说组便卖明米鸟猫狗熊兔花样头子鬼")
# Surnames left out of SURNAMES because they are everyday words here (楼 单 施 关…): still a
# name right before a title that follows no such word (单先生, 施主任, 关女士).
_WORDY_SURNAMES: str = "".join(_WORDS["wordy_surnames"].split())
_COMPOUND_ALT = "|".join(COMPOUND_SURNAMES)
_SURNAME_ALT = _COMPOUND_ALT + f"|[{SURNAMES}]"
_HONORIFIC_ALT = "|".join(sorted(_HONORIFICS, key=len, reverse=True))
_KIN_ALT = "|".join(sorted((re.escape(k) for k in _KIN), key=len, reverse=True))
_HAN = r"[\u4e00-\u9fff]"
# Characters that end a given name rather than belong to it (particles, verbs, places).
_STOP = set(
    "本的了在说是和与跟及也都就还又很把被给让叫家里楼号室门们啊吗呢吧呀哦嘛啦来去到住找打电帮请要会能可对从向他她你我它坏翻拿送买卖看听吃喝拉掉丢"
)

_LONG_HONORIFIC_ALT = "|".join(h for h in sorted(_HONORIFICS, key=len, reverse=True) if len(h) > 1)
# 王先生, 李阿姨, 张师傅, 欧阳先生; 潘桂兰阿姨, 王建国先生 (a full name before a two-character title).
_GIVEN = rf"(?![{''.join(sorted(_STOP))}]){_HAN}"
_WITH_HONORIFIC = re.compile(
    rf"(?:{_SURNAME_ALT}){_GIVEN}{{1,2}}?(?:{_LONG_HONORIFIC_ALT})"
    rf"|(?:{_SURNAME_ALT})(?:{_HONORIFIC_ALT})(?<!工(?=[牌号人作程地厂具资位]))(?!某)"
)
_WORDY_TITLED = re.compile(rf"[{_WORDY_SURNAMES}](?:先生|女士|小姐|主任|经理|书记|阿姨|阿婆|奶奶|大爷|老师)")
# Children and friends by a nickname: 朵朵的妈妈, 宁宁爸爸, 阿华, 诸葛亮亮妈妈.
_NICKNAME = re.compile(
    rf"(?:^|(?<=[,，:：、;；(（\s?？!！。@]))(?P<v>(?P<r>{_HAN})(?P=r)|阿(?![姨婆公爸妈拉里叔伯哥姐嫂弟妹])[\u4e00-\u9fff])"
    rf"|(?P<p>{_GIVEN}{{2,4}})(?=的?(?:妈妈|爸爸))"
)
# Latin given names with a title: "Tony老师", "Kevin先生".
_LATIN_TITLED = re.compile(rf"(?<![A-Za-z])[A-Z][a-z]{{2,}}(?=(?:{_LONG_HONORIFIC_ALT}))")
# 老张, 小李, 大刘 — but not 小黄狗, 小白兔.
_PREFIXED = re.compile(
    rf"(?<![老小大养敬尊古从最缩胆弱短宽扩强伟巨庞])(?:[老小](?P<s>{_SURNAME_ALT})|大(?P<d>[{_COMMON}]))"
    r"(?![狗猫兔鸡鸭鱼鸟虫花车灯菜挂路门厅堂])"
)
# 姓张: the surname alone names the person in context.
_SURNAME_ONLY = re.compile(rf"(?<=姓)(?:{_SURNAME_ALT})")
# Latin names after a cue or in a list entry: "租客信息：Ahmed Khan，", "新业主Kevin".
_LATIN = re.compile(
    rf"(?:(?:{_KIN_ALT})\s*[:：]?\s*|(?:^|(?<=[,，:：、;；(（]))\s*)"
    r"(?P<v>[A-Z][a-z]{2,}(?: [A-Z][a-z]{2,})?)(?![A-Za-z])"
)
# 我妈王秀英, 业主罗淑珍, 承租人：马俊 — the cue, then a surname and one or two more characters.
_AFTER_KIN = re.compile(rf"(?:{_KIN_ALT})\s*[:：]?\s*(?P<v>(?:{_SURNAME_ALT}){_HAN}{{1,2}})")
# A list entry: "，马俊，身份证…", "姓名：杨帆" — a surname and one or two characters standing
# alone between separators.
_ENTRY = re.compile(
    rf"(?:^|(?<=[,，:：、;；(（\s?？!！。]))(?P<v>(?:{_COMPOUND_ALT}){_HAN}{{0,2}}|(?:{_SURNAME_ALT}){_HAN}{{1,2}})"
    rf"(?=[,，、(（)\s?？!！。]|$)"
)


def _trim(value: str, start: int) -> Finding | None:
    """A surname plus given name, cut before a character that cannot be part of a name."""
    for i, ch in enumerate(value):
        if i > 0 and ch in _STOP:
            value = value[:i]
            break
    return Finding(start, start + len(value), NAME) if len(value) >= 2 else None


def _plausible(value: str) -> bool:
    # Not a known word, not a reduplication (哈哈哈), not a place, a business or an animal (麻将馆, 黄狗).
    return (
        value not in _NOT_NAMES
        and value[:2] not in _NOT_NAMES
        and len(set(value)) > 1
        and value[-1] not in _PLACE_ENDINGS
    )


_PLACE_ENDINGS = set("馆店厂院局所站路街区园场室厅市县镇村省湖山江河桥狗猫兔鸡鸭鱼鸟虫色")


def pattern_names(text: str) -> list[Finding]:
    """Names found by surname + honorific, 老/小/大 + surname, and a kinship or role cue."""
    found: list[Finding] = []
    pos = 0
    while (m := _WITH_HONORIFIC.search(text, pos)) is not None:
        if _plausible(m.group()) and text[max(0, m.start() - 1) : m.start() + 1] not in _NOT_NAMES:
            found.append(Finding(m.start(), m.end(), NAME))
            pos = m.end()
        else:  # "关于许阿姨", "居委王书记": the word was not a name; the title may still have one
            pos = m.start() + 1
    for m in _PREFIXED.finditer(text):
        surname = m.group("s") or m.group("d")
        if surname not in _NOT_AFTER_PREFIX and text[m.start() : m.end()] not in _NOT_NAMES:
            found.append(Finding(m.start(), m.end(), NAME))
    found += [Finding(m.start(), m.end(), NAME) for m in _SURNAME_ONLY.finditer(text)]
    found += [Finding(m.start(), m.end(), NAME) for m in _WORDY_TITLED.finditer(text)]
    found += [Finding(m.start(), m.end(), NAME) for m in _LATIN_TITLED.finditer(text)]
    for m in _NICKNAME.finditer(text):
        group = "v" if m.group("v") else "p"
        if m.group(group) not in _NOT_NAMES:
            found.append(Finding(m.start(group), m.end(group), NAME))
    found += [Finding(m.start("v"), m.end("v"), NAME) for m in _LATIN.finditer(text)]
    for pattern in (_AFTER_KIN, _ENTRY):
        for m in pattern.finditer(text):
            finding = _trim(m.group("v"), m.start("v"))
            if finding is not None and _plausible(text[finding.start : finding.end]):
                found.append(finding)
    return found


@lru_cache(maxsize=1)
def _segmenter() -> tuple[Any, dict[str, str]]:
    """jieba's tokenizer and its dictionary's part-of-speech tags, loaded once per process."""
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    return tokenizer, jieba.posseg.POSTokenizer(tokenizer).word_tag_tab


_SURNAME_START = re.compile(rf"(?:{_SURNAME_ALT})")


def segmenter_names(text: str) -> list[Finding]:
    """Person names as the segmenter sees them: words it discovers with its HMM (in no
    dictionary: a name like 翁敏 is the typical such word) or that its dictionary tags nr,
    beginning with a known surname. Plain segmentation is used rather than jieba.posseg,
    which tags the same words 5-6 times slower (measured on the hand-written set)."""
    tokenizer, tags = _segmenter()
    found, offset = [], 0
    for word in tokenizer.cut(text):
        start = text.find(word, offset)
        if start < 0:
            continue
        offset = start + len(word)
        if not 2 <= len(word) <= 3 or not _SURNAME_START.match(word):
            continue
        known = tokenizer.FREQ.get(word)
        # A dictionary word is a name only where the dictionary says so, and not a frequent
        # word it also tags nr (高峰).
        if known and (not tags.get(word, "").startswith("nr") or known > 100):
            continue
        if any(ch in _STOP for ch in word[1:]) or word[1:] in _HONORIFICS or not _plausible(word):
            continue
        found.append(Finding(start, start + len(word), NAME))
    return found


def find_names(text: str, segmenter: bool = True) -> list[Finding]:
    """Every name found without a roster (overlaps are resolved by the scrubber)."""
    found = pattern_names(text)
    if segmenter:
        found += segmenter_names(text)
    # 张 is also a measure word: "这张卡", "一张身份证" name nobody.
    return [f for f in found if not (text[f.start] == "张" and text[f.start - 1 : f.start] in _MEASURED)]


_MEASURED = set("这那一每几两哪整半多")
