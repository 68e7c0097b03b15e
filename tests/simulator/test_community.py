"""The simulated community: deterministic, realistic, valid identifiers, an ageing population."""

from __future__ import annotations

from stdnum.cn import ric

from simulator.community import Community


def test_the_same_seed_gives_the_same_people() -> None:
    assert Community(seed=3).residents == Community(seed=3).residents
    assert Community(seed=3).residents != Community(seed=4).residents


def test_music_square_has_706_households_with_valid_unique_identifiers() -> None:
    c = Community()
    assert len(c.households) == 706
    ids = [r.id_number for r in c.residents]
    assert len(set(ids)) == len(ids) and all(ric.is_valid(i) for i in ids)
    assert len({r.openid for r in c.residents}) == len(c.residents)
    assert all(len(r.phone) == 11 and r.phone.startswith("1") for r in c.residents)
    assert len({h.address for h in c.households}) == 706


def test_an_ageing_estate_with_elderly_living_alone_and_consent_only_where_it_applies() -> None:
    c = Community()
    elderly_share = sum(r.age >= 60 for r in c.residents) / len(c.residents)
    assert elderly_share > 0.2
    assert sum(h.lives_alone_elderly for h in c.households) > 70
    assert all(h.elderly for h in c.households if h.consent_elderly_care)
    truth = c.ground_truth()
    assert set(truth) == {"names", "id_numbers", "phones", "openids", "addresses"}
