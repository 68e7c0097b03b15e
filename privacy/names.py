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
# Not after a determiner: in 那位先生, 各位女士 the 位 is a measure word.
_WORDY_TITLED = re.compile(
    rf"(?<![那这各每一哪该几两诸])[{_WORDY_SURNAMES}](?:先生|女士|小姐|主任|经理|书记|阿姨|阿婆|奶奶|大爷|老师)"
)
# Children and friends by a nickname: 朵朵的妈妈, 宁宁爸爸, 阿华, 诸葛亮亮妈妈.
_NICKNAME = re.compile(
    rf"(?:^|(?<=[,，:：、;；(（\s?？!！。@和跟与给叫])|(?<=[我你他她]家))"
    rf"(?P<v>(?P<r>{_HAN})(?P=r)|阿(?![姨婆公爸妈拉里叔伯哥姐嫂弟妹])[\u4e00-\u9fff]|阿[A-Z][A-Za-z]+)"
    rf"|(?P<p>{_GIVEN}{{2,4}})(?=的?(?:妈妈|爸爸))"
)
# Any one character before 先生/女士/小姐 is a surname, however rare (贝女士, 禚先生), unless it is
# a word that stands there (该女士, 那位先生, 各位女士, 男士女士).
_TITLED_RARE = re.compile(r"(?P<v>[\u4e00-\u9fff])(?:先生|女士|小姐)")
_NOT_BEFORE_TITLE = set("该这那位各一某男此其本两几每诸众老小大好美靓帅名个")
_NOT_BEFORE_TITLE |= set("与及或跟给对向找问请让叫谢感女士生姐是的了和在有为被把")
# Latin given names with a title: "Tony老师", "Kevin先生".
_LATIN_TITLED = re.compile(rf"(?<![A-Za-z])[A-Z][a-z]{{2,}}(?=(?:{_LONG_HONORIFIC_ALT}))")
# 老张, 小李, 大刘 — but not 小黄狗, 小白兔.
_PREFIXED = re.compile(
    rf"(?<![老小大养敬尊古从最缩胆弱短宽扩强伟巨庞])(?:[老小](?P<s>{_SURNAME_ALT})|大(?P<d>[{_COMMON}]))"
    r"(?![狗猫兔鸡鸭鱼鸟虫花车灯菜挂路门厅堂])"
)
# A compound surname is a name wherever it stands (欧阳雪, 上官婉儿), but for those that are
# also everyday words here (东方, 西门, 南宫 gates and directions; 长孙, 公孙 kin).
_COMPOUND_ANYWHERE = re.compile(
    "(?:" + "|".join(c for c in COMPOUND_SURNAMES if c not in ("东方", "西门", "南宫", "长孙", "公孙")) + ")"
    rf"{_HAN}{{1,2}}"
)
# 李明家的狗, 沈家豪家的装修: a full name before 家 and what belongs to the home.
_NAME_HOME = re.compile(rf"(?P<v>(?:{_SURNAME_ALT}){_HAN}{{1,2}}?)(?=家(?:的|里|门口|楼上|楼下|孩子|老人|阿姨))")
# 姓张: the surname alone names the person in context.
_SURNAME_ONLY = re.compile(rf"(?<=姓)(?:{_SURNAME_ALT})")
# Latin names after a cue or in a list entry: "租客信息：Ahmed Khan，", "新业主Kevin".
_LATIN = re.compile(
    rf"(?:(?:{_KIN_ALT})\s*[:：]?\s*|(?:^|(?<=[,，:：、;；(（]))\s*)"
    r"(?P<v>[A-Z][a-z]{2,}(?: [A-Z][a-z]{2,})?)(?![A-Za-z])"
)
# 我妈王秀英, 业主罗淑珍, 承租人：马俊 — the cue, then a surname and one or two more characters.
_AFTER_KIN = re.compile(
    rf"(?:{_KIN_ALT})\s*[:：]?\s*(?P<v>(?:{_SURNAME_ALT}){_HAN}{{1,2}}|[{_WORDY_SURNAMES}]{_HAN}{{2}}(?=[,，、\s。!！?？]|$))"
)
# A list entry: "，马俊，身份证…", "姓名：杨帆" — a surname and one or two characters standing
# alone between separators.
_ENTRY = re.compile(
    rf"(?:^|(?<=[,，:：、;；(（\s?？!！。]))(?P<v>(?:{_COMPOUND_ALT}){_HAN}{{0,2}}|(?:{_SURNAME_ALT}){_HAN}{{1,2}})"
    rf"(?=[,，、(（)\s?？!！。]|\d+\s*(?:号楼|栋|幢|号|#|-)|$)"
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
    found += [
        Finding(m.start(), m.end(), NAME)
        for m in _TITLED_RARE.finditer(text)
        if m.group("v") not in _NOT_BEFORE_TITLE and m.group("v") not in _STOP
    ]
    for m in _NICKNAME.finditer(text):
        group = "v" if m.group("v") else "p"
        if m.group(group) not in _NOT_NAMES and m.group(group)[-1] not in _PLACE_ENDINGS:
            found.append(Finding(m.start(group), m.end(group), NAME))
    found += [Finding(m.start("v"), m.end("v"), NAME) for m in _LATIN.finditer(text)]
    for m in _COMPOUND_ANYWHERE.finditer(text):
        finding = _trim(m.group(), m.start())
        if finding is not None and finding.end - finding.start > 2:
            found.append(finding)
    for m in _NAME_HOME.finditer(text):
        value = m.group("v")
        if len(value) >= 3 and _plausible(value) and not any(ch in _STOP_IN_WORD for ch in value[1:]):
            found.append(Finding(m.start("v"), m.end("v"), NAME))
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
    which tags the same words 5-6 times slower (measured on the hand-written set).

    A given name or a nickname without a surname (秀芳, 小芳, 浩浩, 晓雯, 凤姐) is a name only
    in a person's slot: right after a kinship or role word (我家阿姨秀芳, 保姆小芳, 孙子浩浩,
    我家小宇), as a contact entry before a phone number (，晓雯 135…), or as a 姐/哥 nickname
    (凤姐, 找红姐); and only when the dictionary does not know it as a word, or knows it as a
    rare person name (小雨), so 我家小孩 and 我家阿姨 stay."""
    tokenizer, tags = _segmenter()
    words: list[tuple[int, str]] = []
    offset = 0
    for word in tokenizer.cut(text):
        start = text.find(word, offset)
        if start < 0:
            continue
        offset = start + len(word)
        words.append((start, word))
    found = []
    for i, (start, word) in enumerate(words):
        known = tokenizer.FREQ.get(word)
        if 2 <= len(word) <= 3 and _SURNAME_START.match(word):
            # A dictionary word is a name only where the dictionary says so, and not a frequent
            # word it also tags nr (高峰).
            if known and (not tags.get(word, "").startswith("nr") or known > 100):
                pass
            elif not (
                word[-1] in _STOP
                or any(ch in (_STOP if known else _STOP_IN_WORD) for ch in word[1:])
                or word[1:] in _HONORIFICS
                or not _plausible(word)
            ):
                found.append(Finding(start, start + len(word), NAME))
                continue
        slot = _in_person_slot(text, words, i, tokenizer.FREQ, tags)
        if slot is not None:
            found.append(Finding(start + slot[0], start + slot[1], NAME))
    return found


_SLOT_CUES = set(_KIN) | {"我家", "他家", "她家", "你家", "家的", "联系人", "紧急联系人", "外孙女"}
_SEPARATORS = set(",，:：、;；(（)）?？!！。") | {"", " "}
# A phone number right after the word (after spaces or a colon): mobile, 021 or bare 8 digits.
_PHONE_NEXT = re.compile(r"[\s:：]*(?:(?:\+?86[\s-]?)?1[3-9](?:[\s-]?\d){9}|0?21[\s-]?\d{8}|[2-9]\d{7})(?!\d)")
# Characters no given name begins with here (verbs, adverbs, particles: 不戴, 来领, 能先).
_NOT_GIVEN_START = _STOP | set("不没别再也都就还又很太真刚才已正能想出进有是管一这那每各某多少几个处人修原早晚")
_NICK_SUFFIX = "姐哥"
# Inside a word the segmenter found, only these end a name: 可, 家, 来 are given-name characters
# too (孟可欣, 沈家豪), and the segmenter has already split 可以, 家里 off.
_STOP_IN_WORD = set("的了在是和与跟及也都就还把被给让叫们啊吗呢吧呀哦嘛啦")
_NOT_GIVEN_END = set("上下里内外边旁班组队部处科课费表款单证卡有好")  # 窗台上, 维修班: places and things
_NOT_BEFORE_NICK = set("大小老表堂师学空阿二三四亲姐哥帅靓美嫂俩个这那各有的富")


def _in_person_slot(
    text: str, words: list[tuple[int, str]], i: int, freq: dict[str, int], tags: dict[str, str]
) -> tuple[int, int] | None:
    """The span (within word i) of a name without a surname standing in a person's slot."""
    start, word = words[i]
    lead = 1 if len(word) >= 3 and word[0] in _STOP else 0  # 找红姐: the verb and the name, one word
    name = word[lead:]
    if not (2 <= len(name) <= 3) or not all("\u4e00" <= ch <= "\u9fff" for ch in name):
        return None
    known = freq.get(word) or 0
    # A rare dictionary word is no evidence against a name (浩浩, 3 uses), a rare person name (小雨) none.
    rare_person = tags.get(word, "").startswith("nr") and known <= 1000
    if known > 5 and not rare_person:
        return None
    if name in _NOT_NAMES or name in _SLOT_CUES or name in _HONORIFICS or name[0] in _NOT_GIVEN_START:
        return None
    if name[-1] in _PLACE_ENDINGS or name[-1] in _NOT_GIVEN_END or any(ch in _STOP for ch in name[1:]):
        return None
    if len(name) == 2 and name[1] in _NICK_SUFFIX and name[0] not in _NOT_BEFORE_NICK and not known:
        return lead, len(word)  # 凤姐, 强哥: a nickname whatever stands around it
    if len(name) == 2 and name[0] in "小阿" and known <= 5 and name[1] not in _NOT_AFTER_PREFIX | _NOT_GIVEN_END:
        return lead, len(word)  # 小诺, 小雯: a nickname the dictionary does not know as a word
    before = [w for _, w in words[max(0, i - 2) : i] if w.strip()]
    if before and before[-1] in ":：" and len(before) > 1:
        before = before[:-1]
    if not lead and before and before[-1] in _SLOT_CUES:
        return 0, len(word)
    if not lead and (not before or before[-1] in _SEPARATORS) and _PHONE_NEXT.match(text, start + len(word)):
        return 0, len(word)
    return None


def find_names(text: str, segmenter: bool = True) -> list[Finding]:
    """Every name found without a roster (overlaps are resolved by the scrubber)."""
    found = pattern_names(text)
    if segmenter:
        found += segmenter_names(text)
    # 张 is also a measure word: "这张卡", "一张身份证" name nobody.
    return [f for f in found if not (text[f.start] == "张" and text[f.start - 1 : f.start] in _MEASURED)]


_MEASURED = set("这那一每几两哪整半多")
