"""Free text residents and staff write on the platform: repair requests, circle posts, notices.

Written the way residents really write: a repair request often gives the room, a phone
number and sometimes a name; a circle post may give a phone or a WeChat contact. That is
the point: these fields are `free_text` in the contracts, and the scrubbers must catch
the identifiers in them (every one of which is in the simulator's ground truth).
"""

from __future__ import annotations

from random import Random

from simulator.community import Household, Resident

REPAIR_CATEGORIES = {
    "plumbing": ["厨房水管漏水", "卫生间下水道堵塞", "楼上渗水到我家天花板", "水龙头关不紧一直滴水"],
    "electrical": ["家里跳闸后恢复不了", "插座冒火花", "电表箱门坏了"],
    "public_lighting": ["楼道声控灯不亮", "单元门口路灯坏了", "三楼楼道灯一直亮"],
    "doors_windows": ["单元门关不上", "楼道窗户玻璃碎了", "信报箱门掉了"],
    "roof_walls": ["顶楼屋面漏水", "外墙瓷砖松动有掉落危险", "墙面发霉起皮"],
    "greenery": ["树枝挡住窗户", "绿化带里有积水蚊子多"],
}
CIRCLES = ["second_hand", "pets", "mutual_help", "parenting", "elderly_chat", "lost_found"]
NOTICE_CATEGORIES = ["property", "safety", "governance", "community_event", "utilities"]

_URGENCY = ["麻烦尽快来看一下", "老人一个人在家，请师傅上门前先打电话", "白天家里没人，晚上六点后可以上门", ""]
_POSTS = {
    "second_hand": "出闲置{item}，九成新，{price}元自提，有意者电话{phone}",
    "pets": "谁家的{pet}在{building}号楼下面，很乖，主人快来领",
    "mutual_help": "感谢{building}号楼的{name}帮我把煤气罐搬上楼，好邻居！",
    "parenting": "周末有没有一起去长风公园的小朋友？联系我{phone}",
    "elderly_chat": "今天社区食堂的红烧肉不错，老伙计们明天一起去",
    "lost_found": "在小区南门捡到一串钥匙，已交物业，失主可联系{name}",
}
_ITEMS = ["婴儿推车", "电饭煲", "书桌", "自行车", "空气净化器", "儿童座椅"]
_PETS = ["小黄狗", "橘猫", "泰迪", "鹦鹉"]
_NOTICES = {
    "property": ("关于{month}月物业费缴纳的通知", "各位业主：{month}月物业费已出账，可通过「音乐之声」公众号缴纳。"),
    "safety": ("关于楼道堆物清理的通知", "为消除消防隐患，请各位居民于本周五前清理楼道堆物，电动车严禁进楼道充电。"),
    "governance": ("业主大会电子投票公告", "关于使用专项维修资金的表决已开始，请业主在公众号「业主投票」中投票。"),
    "community_event": ("重阳节敬老活动报名", "居委会将于本周六在活动室举办敬老活动，欢迎志愿者报名。"),
    "utilities": ("停水通知", "因管道维修，{building}号楼明日9:00-15:00停水，请提前储水。"),
}


def repair_text(rng: Random, household: Household, resident: Resident, category: str) -> str:
    """A repair request as a resident types it, often with the room, a phone and a name."""
    problem = rng.choice(REPAIR_CATEGORIES[category])
    parts = [household.address if rng.random() < 0.7 else "", problem]
    if rng.random() < 0.6:
        parts.append(f"联系电话{resident.phone}")
    if rng.random() < 0.3:
        parts.append(f"找{resident.name}")
    parts.append(rng.choice(_URGENCY))
    return "，".join(p for p in parts if p)


def post_text(rng: Random, circle: str, author: Resident, neighbour: Resident, building: int) -> str:
    """A neighbour-circle post; some carry a phone or a neighbour's name."""
    return _POSTS[circle].format(
        item=rng.choice(_ITEMS),
        price=rng.choice([20, 50, 80, 100, 150]),
        phone=author.phone,
        pet=rng.choice(_PETS),
        building=building,
        name=neighbour.name,
    )


def notice_text(rng: Random, category: str, month: int, building: int) -> tuple[str, str]:
    """A notice's title and body, as the property office or the residents' committee posts it."""
    title, body = _NOTICES[category]
    return title.format(month=month), body.format(month=month, building=building)
