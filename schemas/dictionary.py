"""The data dictionary: every stream's contract rendered as Markdown, in Chinese and English.

For community admins and consumers alike: per stream its system, keys, cursor, evolution
rule; per field its type, unit, privacy class and how the warehouse treats that class.
`neuron dictionary` prints it.
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas.contract import Contract, PrivacyClass

TREATMENT = {
    PrivacyClass.DIRECT: ("直接标识，以密钥化假名存储", "direct identifier, kept only as a keyed pseudonym"),
    PrivacyClass.QUASI: ("准标识，发布时泛化或聚合", "quasi-identifier, generalised or aggregated when published"),
    PrivacyClass.SENSITIVE: ("敏感，仅聚合发布（k≥5）", "sensitive, published only aggregated (k ≥ 5)"),
    PrivacyClass.FREE_TEXT: ("自由文本，去除个人信息", "free text, personal data scrubbed"),
    PrivacyClass.PUBLIC: ("公开", "public"),
}
EVOLUTION = {
    "evolve": ("接受新增字段并报告", "new fields accepted and reported"),
    "freeze": ("结构变化的记录隔离，窗口失败", "rows with a changed structure quarantined, the window fails"),
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_contract(contract: Contract) -> str:
    """One stream's section of the dictionary."""
    zh_rule, en_rule = EVOLUTION[contract.evolution]
    lines = [
        f"## `{contract.name}` — {contract.title.zh} / {contract.title.en}",
        "",
        f"- 系统 System: {contract.system} · 版本 Version: {contract.version}",
        f"- 主键 Primary key: {', '.join(f'`{k}`' for k in contract.primary_key)}"
        f" · 增量字段 Cursor: `{contract.cursor_field}` · 事件时间 Event time: `{contract.event_time}`",
        f"- 结构演进 Evolution: `{contract.evolution}` — {zh_rule} / {en_rule}",
        "",
        "| 字段 Field | 类型 Type | 单位 Unit | 隐私级别 Privacy | 说明 | Description |",
        "|---|---|---|---|---|---|",
    ]
    for f in contract.fields:
        privacy = f"`{f.privacy.value}`" + (f" ({f.identifier_kind})" if f.privacy is PrivacyClass.DIRECT else "")
        nullable = "" if f.nullable else " · 必填 required"
        lines.append(
            f"| `{f.name}` | {f.type}{nullable} | {_cell(f.unit or '')} | {privacy} "
            f"| {_cell(f.description.zh)} | {_cell(f.description.en)} |"
        )
    return "\n".join(lines) + "\n"


def render_dictionary(contracts: Iterable[Contract]) -> str:
    """The whole dictionary: the privacy classes, then every stream by system and name."""
    ordered = sorted(contracts, key=lambda c: (c.system, c.name))
    head = [
        "# 数据字典 Data dictionary",
        "",
        "| 隐私级别 Privacy class | 仓库处理 | Treatment in the warehouse |",
        "|---|---|---|",
        *[f"| `{cls.value}` | {zh} | {en} |" for cls, (zh, en) in TREATMENT.items()],
        "",
    ]
    return "\n".join(head) + "\n" + "\n".join(render_contract(c) for c in ordered)


def all_contracts() -> list[Contract]:
    """Every contract in schemas/contracts."""
    from schemas.contract import CONTRACTS_DIR, load_contract

    return [load_contract(path.stem) for path in sorted(CONTRACTS_DIR.glob("*.yaml"))]
