"""The data dictionary renders every contract: Chinese and English, units, privacy class."""

from __future__ import annotations

from schemas.contract import load_contract
from schemas.dictionary import all_contracts, render_contract, render_dictionary


def test_every_contract_is_in_the_dictionary_with_every_field() -> None:
    contracts = all_contracts()
    text = render_dictionary(contracts)
    assert text.startswith("# 数据字典 Data dictionary")
    for contract in contracts:
        assert f"## `{contract.name}` — {contract.title.zh} / {contract.title.en}" in text
        for f in contract.fields:
            assert f"| `{f.name}` |" in text


def test_a_field_row_shows_unit_privacy_class_identifier_kind_and_both_languages() -> None:
    section = render_contract(load_contract("platform_residents"))
    assert "| `id_number` | string · 必填 required |  | `direct` (id_number) | 居民身份证号码 |" in section
    assert "| `age` | int64 · 必填 required | years | `quasi` | 年龄（周岁） | Age in full years |" in section
    assert "`freeze`" in section and "窗口失败" in section


def test_streams_are_ordered_by_system_then_name() -> None:
    text = render_dictionary([load_contract("platform_votes"), load_contract("door_access")])
    assert text.index("`door_access`") < text.index("`platform_votes`")
