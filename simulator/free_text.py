"""A labelled set of Chinese free text — repair descriptions, circle posts, notices — with the
identifiers residents really put in them, each labelled with its kind and position.

It measures the PII recognisers (privacy/recognisers.py): recall per kind over the labels,
precision over what they find. The identifiers are the community's own (names, ID numbers,
phones, openids, room addresses from simulator.community, plates from simulator.plates)
plus bank cards, old 15-digit ID numbers, e-mail addresses, WeChat ids and landlines made
here, written in the formats people use (138-1234-5678, 沪A·12345, 6222 0212 …). Texts also
carry look-alikes that are not identifiers (order numbers, amounts, dates, times).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from random import Random

from stdnum import luhn

from simulator.community import Community, Household, Resident
from simulator.plates import new_energy_plate, ordinary_plate


@dataclass(frozen=True)
class Label:
    """Where an identifier is in a text, and its kind (the recognisers' kind names)."""

    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class LabelledText:
    """One text and its labels."""

    genre: str  # repair | circle | notice
    text: str
    labels: tuple[Label, ...]


TEMPLATES = {
    "repair": [
        "{ROOM}{problem}，联系电话{MOBILE}，找{NAME}。{urgency}",
        "{problem}，地址{ROOM}，{NAME}，手机{MOBILE}",
        "报修：{problem}。{noise}业主{NAME}（{ROOM}），电话{MOBILE}，{urgency}",
        "{ROOM}的{problem}，师傅来之前打座机{LANDLINE}",
        "{problem}，{noise}{urgency}",
    ],
    "circle": [
        "出闲置{item}，九成新，{price}元自提，加微信{WECHAT_ID}或打{MOBILE}",
        "在南门捡到{NAME}的身份证{ID_NUMBER}，已交物业，请本人来领",
        "谁的车{PLATE}挡住消防通道了？{noise}",
        "捡到一张银行卡{BANK_CARD}，卡主{NAME}请联系{MOBILE}",
        "帮{NAME}阿姨问一下，老身份证号{OLD_ID_NUMBER}还能办社保吗？",
        "感谢{ROOM}的{NAME}帮忙搬东西，好邻居！{noise}",
        "有意者发邮件到{EMAIL}，或者微信号：{WECHAT_ID}",
        "团购群满了，新群主openid {OPENID}，{noise}",
        "{noise}周末一起去长风公园，{price}元AA",
    ],
    "notice": [
        "请{PLATE}车主尽快挪车，物业电话{LANDLINE}",
        "{ROOM}业主{NAME}：您的快递在门卫室，{noise}",
        "因管道维修，{building}号楼明日9:00-15:00停水。{noise}咨询电话{LANDLINE}",
        "{PLATE}、{PLATE}两辆车长期占用消防通道，请车主联系{MOBILE}",
        "关于{month}月物业费缴纳的通知：{noise}可通过「音乐之声」公众号缴纳，共{price}元。",
    ],
}
_PROBLEMS = ["厨房水管漏水", "卫生间下水道堵塞", "楼道声控灯不亮", "单元门关不上", "顶楼屋面漏水", "插座冒火花"]
_URGENCY = ["麻烦尽快来看一下", "老人一个人在家，请师傅上门前先打电话", "晚上六点后可以上门", ""]
_ITEMS = ["婴儿推车", "电饭煲", "书桌", "自行车", "空气净化器"]
_EMAIL_DOMAINS = ["qq.com", "163.com", "126.com", "sina.com", "gmail.com"]


def _noise(rng: Random) -> str:
    """Look-alikes that are not identifiers: order numbers, dates, times, amounts, codes."""
    return rng.choice(
        [
            f"工单号WO{rng.randint(20260000, 20269999)}-{rng.randint(1, 999):03d}，",
            f"订单号{rng.randint(10**17, 10**18 - 1)}，",
            f"{rng.randint(2020, 2026)}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日，",
            f"{rng.randint(6, 21)}:{rng.choice(['00', '30'])}以后，",
            f"快递单号SF{rng.randint(10**11, 10**12 - 1)}，",
            f"共{rng.randint(2, 9)}户，第{rng.randint(1, 30)}期，",
            f"温度{rng.randint(-3, 38)}度，",
            "",
        ]
    )


def _luhn_card(rng: Random) -> str:
    length = rng.choice([16, 19])
    body = "62" + "".join(rng.choice(string.digits) for _ in range(length - 3))
    number = body + luhn.calc_check_digit(body)
    if rng.random() < 0.5:
        return " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    return number


def _old_id(rng: Random) -> str:
    area = rng.choice(["310107", "310104", "310105", "320102", "330106"])
    return f"{area}{rng.randint(30, 89):02d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"


def _mobile(rng: Random, resident: Resident) -> str:
    p = resident.phone
    return rng.choice([p, p, f"{p[:3]}-{p[3:7]}-{p[7:]}", f"{p[:3]} {p[3:7]} {p[7:]}", f"+86 {p}"])


def _room(rng: Random, h: Household) -> str:
    return rng.choice(
        [h.address, h.address, f"{h.building}号{h.room}室", f"{h.building}号楼{h.room}室", f"{h.building}栋{h.room}"]
    )


def _plate(rng: Random) -> str:
    plate = new_energy_plate(rng) if rng.random() < 0.25 else ordinary_plate(rng)
    return rng.choice([plate, plate, plate[:2] + "·" + plate[2:], plate[:2] + " " + plate[2:]])


def _wechat(rng: Random) -> str:
    if rng.random() < 0.4:
        return "wxid_" + "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(14))
    head = rng.choice(string.ascii_lowercase)
    return head + "".join(rng.choice(string.ascii_lowercase + string.digits + "_") for _ in range(rng.randint(6, 12)))


def _landline(rng: Random) -> str:
    number = f"{rng.choice('56')}{rng.randint(0, 9999999):07d}"
    return rng.choice([f"021-{number}", f"(021){number}", f"021 {number[:4]} {number[4:]}", f"021{number}"])


def _identifier(kind: str, rng: Random, h: Household, r: Resident) -> str:
    if kind == "ID_NUMBER":
        return r.id_number.lower() if rng.random() < 0.1 else r.id_number
    email = "".join(rng.choice(string.ascii_lowercase) for _ in range(6)) + str(rng.randint(1, 999))
    return {
        "NAME": lambda: r.name,
        "MOBILE": lambda: _mobile(rng, r),
        "ROOM": lambda: _room(rng, h),
        "PLATE": lambda: _plate(rng),
        "BANK_CARD": lambda: _luhn_card(rng),
        "OLD_ID_NUMBER": lambda: _old_id(rng),
        "EMAIL": lambda: f"{email}@{rng.choice(_EMAIL_DOMAINS)}",
        "WECHAT_ID": lambda: _wechat(rng),
        "OPENID": lambda: r.openid,
        "LANDLINE": lambda: _landline(rng),
    }[kind]()


def _render(rng: Random, template: str, h: Household, r: Resident) -> tuple[str, list[Label]]:
    text, labels = "", []
    for piece in re.split(r"(\{\w+\})", template):
        slot = piece[1:-1] if piece.startswith("{") else None
        if slot is None:
            text += piece
        elif slot.isupper():
            value = _identifier(slot, rng, h, r)
            labels.append(Label(len(text), len(text) + len(value), slot))
            text += value
        else:
            text += {
                "problem": lambda: rng.choice(_PROBLEMS),
                "urgency": lambda: rng.choice(_URGENCY),
                "noise": lambda: _noise(rng),
                "item": lambda: rng.choice(_ITEMS),
                "price": lambda: str(rng.randint(5, 900)),
                "building": lambda: str(rng.randint(1, 30)),
                "month": lambda: str(rng.randint(1, 12)),
            }[slot]()
    return text, labels


def labelled_texts(count: int = 2000, seed: int = 7, community: Community | None = None) -> list[LabelledText]:
    """`count` labelled texts, the same for the same seed and community."""
    community = community or Community(seed=seed)
    rng = Random(f"{seed}:free-text")
    genres = ["repair"] * 4 + ["circle"] * 4 + ["notice"] * 2
    out = []
    for _ in range(count):
        genre = rng.choice(genres)
        household = rng.choice(community.households)
        resident = rng.choice(household.residents)
        text, labels = _render(rng, rng.choice(TEMPLATES[genre]), household, resident)
        out.append(LabelledText(genre, text, tuple(labels)))
    return out
