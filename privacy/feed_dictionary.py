"""What a consumer receives of a feed, field by field: meaning (zh/en), unit, type as
received, treatment (the operator, its parameters and a sentence in Chinese and English)
and the legal basis it is shared under. `/v1/feeds/{feed}` and `neuron dictionary --feeds`
both show it, so the catalog and the printed dictionary cannot disagree.
"""

from __future__ import annotations

from typing import Any

from privacy.operators.base import Operator
from privacy.policy import Policy
from privacy.view import FEED_TYPES
from schemas.feeds import Feed

_LEVELS = {
    "hour": ("小时", "the hour"),
    "day": ("日", "the day"),
    "month": ("月", "the month"),
    "unit": ("单元", "the unit (entrance)"),
    "building": ("楼栋", "the building"),
    "community": ("小区", "the community"),
}


def explain(operator: Operator, consumer: str, k: int) -> dict[str, str]:
    """One sentence per language on what the operator did to the value this consumer receives."""
    params = operator.describe()
    name = params["op"]
    if name == "keep":
        return {"zh": "原样提供", "en": "as recorded"}
    if name == "seal_to":
        return {
            "zh": f"密封给{consumer}：仅其私钥可打开（RFC 9180 HPKE）",
            "en": f"sealed to {consumer}: only its private key opens it (RFC 9180 HPKE)",
        }
    if name == "pseudonymise":
        return {
            "zh": "假名：密钥化的令牌，同一周期内同值同令牌，无法还原",
            "en": "pseudonym: a keyed token, the same for the same value within an epoch, not reversible",
        }
    if name == "generalise":
        if params.get("bands"):
            bands = ", ".join(str(b) for b in params["bands"])
            return {"zh": f"已泛化为区间（分界 {bands}）", "en": f"generalised to bands (bounds {bands})"}
        zh, en = _LEVELS[str(params["to"])]
        return {"zh": f"已泛化到{zh}", "en": f"generalised to {en}"}
    if name == "mask":
        start, end = params.get("keep_start", 0), params.get("keep_end", 0)
        return {
            "zh": f"部分遮盖：仅保留前 {start} 位和后 {end} 位",
            "en": f"masked: only the first {start} and last {end} characters kept",
        }
    if name == "aggregate":
        return {
            "zh": f"聚合计数：少于 {k} 的格子不公布（为空）",
            "en": f"aggregate count: cells under {k} are suppressed (null)",
        }
    return {"zh": name, "en": name}


def received_fields(feed: Feed, policy: Policy) -> list[dict[str, Any]]:
    """The fields `policy`'s consumer receives of `feed`, in the feed's order."""
    received = set(policy.published_fields(feed))
    k = policy.k_for(feed.name)
    fields = []
    for f in feed.fields:
        if f.name not in received:
            continue
        operator = policy.operator(feed.name, f.name)
        fields.append(
            {
                "name": f.name,
                "meaning": f.description.model_dump(),
                "unit": f.unit,
                "type": f.type,  # the feed's logical type
                "parquet_type": str(operator.output_type(FEED_TYPES[f.type])),  # as the files hold it
                "privacy": f.privacy.value,
                "treatment": policy.treatment(feed.name, f.name),
                "treatment_text": explain(operator, policy.consumer, k),
                "legal_basis": policy.legal_basis,
            }
        )
    return fields


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def render_feeds(feeds: dict[str, Feed], policies: dict[str, Policy]) -> str:
    """Markdown: per consumer, per granted feed, every field as that consumer receives it."""
    lines = ["# 共享数据字典 What each consumer receives", ""]
    for policy in sorted(policies.values(), key=lambda p: p.consumer):
        lines += [
            f"## {policy.consumer} — {_cell(policy.title)}",
            "",
            f"法律依据 Legal basis: {_cell(policy.legal_basis)}",
            "",
        ]
        granted = [feeds[name] for name in sorted(policy.feeds) if name in feeds]
        if not granted:
            lines += ["（无共享数据 nothing shared）", ""]
        for feed in granted:
            lines += [
                f"### `{feed.name}` — {feed.title.zh} / {feed.title.en}",
                "",
                "| 字段 Field | 含义 | Meaning | 单位 Unit | 类型 Type | 处理 | Treatment |",
                "|---|---|---|---|---|---|---|",
            ]
            for f in received_fields(feed, policy):
                lines.append(
                    f"| `{f['name']}` | {_cell(f['meaning']['zh'])} | {_cell(f['meaning']['en'])} | {_cell(f['unit'])} "
                    f"| {f['parquet_type']} | {_cell(f['treatment_text']['zh'])} | {_cell(f['treatment_text']['en'])} |"
                )
            lines.append("")
    return "\n".join(lines)
