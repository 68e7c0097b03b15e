"""The people and places of a simulated community: buildings, entrances, households, residents.

Deterministic from a seed, so every simulated system (the WeChat platform's database, the
in-home detectors, the wristbands, the door access exports) sees the same households and
the same residents. Music Square is an ageing 1990s estate: six-storey walk-ups, many
older residents, a good share living alone. Names, ID numbers and mobiles come from
Faker's zh_CN locale (the ID numbers carry valid checksums and the resident's birth date).

`ground_truth()` lists every direct identifier generated, so tests can prove none leaks.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from random import Random

from faker import Faker

SEED_DATE = date(2026, 11, 1)  # ages are computed at this date, so they do not drift with the clock


@dataclass(frozen=True)
class Resident:
    """A person registered on the community platform."""

    resident_id: str
    household_id: str
    name: str
    id_number: str  # 18-digit resident identity card number (居民身份证号)
    phone: str
    openid: str  # WeChat openid on the community's official account
    gender: str  # "M" | "F"
    birth_date: date
    is_owner: bool

    @property
    def age(self) -> int:
        years = SEED_DATE.year - self.birth_date.year
        return years - ((SEED_DATE.month, SEED_DATE.day) < (self.birth_date.month, self.birth_date.day))


@dataclass(frozen=True)
class Household:
    """A flat: building, entrance (单元), room, and who lives there."""

    household_id: str
    building: int
    unit: int
    floor: int
    room: str  # e.g. "302"
    residents: tuple[Resident, ...]
    consent_smoke_gas: bool  # opted in to in-home smoke and gas detection
    consent_elderly_care: bool  # opted in to wristband monitoring of its elderly

    @property
    def address(self) -> str:
        """The room address as residents write it (a direct identifier)."""
        return f"{self.building}号楼{self.unit}单元{self.room}室"

    @property
    def elderly(self) -> tuple[Resident, ...]:
        return tuple(r for r in self.residents if r.age >= 65)

    @property
    def lives_alone_elderly(self) -> bool:
        return len(self.residents) == 1 and self.residents[0].age >= 65


@dataclass
class Community:
    """A whole simulated community, built once from its seed."""

    seed: int = 7
    community_id: str = "music-square"
    households_count: int = 706
    buildings: int = 30
    floors: int = 6
    households: list[Household] = field(init=False)

    def __post_init__(self) -> None:
        self.households = _build(self)

    @cached_property
    def residents(self) -> list[Resident]:
        return [r for h in self.households for r in h.residents]

    def entrances(self) -> list[tuple[int, int]]:
        """Every (building, unit) that has a door."""
        return sorted({(h.building, h.unit) for h in self.households})

    def ground_truth(self) -> dict[str, list[str]]:
        """Every direct identifier the community holds, by kind."""
        return {
            "names": sorted({r.name for r in self.residents}),
            "id_numbers": sorted(r.id_number for r in self.residents),
            "phones": sorted({r.phone for r in self.residents}),
            "openids": sorted(r.openid for r in self.residents),
            "addresses": sorted(h.address for h in self.households),
        }


def _openid(rng: Random) -> str:
    alphabet = string.ascii_letters + string.digits + "-_"
    return "oMSQ" + "".join(rng.choice(alphabet) for _ in range(24))


# Shanghai district codes (Putuo first) that were in use for every birth year we generate:
# python-stdnum checks the region against the year, and Faker's random regions often fail.
_AREAS = ["310107", "310107", "310107", "310104", "310105", "310106", "310110", "310109", "310108", "310101"]


def _id_number(fake: Faker, rng: Random, age: int, gender: str, seen: set[str]) -> str:
    """A unique resident ID number that python-stdnum accepts (checksum, birth date, region)."""
    from stdnum.cn import ric

    for _ in range(50):
        number = fake.ssn(min_age=age, max_age=age, gender=gender, area_code=rng.choice(_AREAS))  # type: ignore[call-arg]
        if number not in seen and ric.is_valid(number):
            seen.add(number)
            return number
    raise RuntimeError("could not generate a valid resident ID number")


def _build(c: Community) -> list[Household]:
    rng = Random(f"{c.seed}:{c.community_id}:households")
    fake = Faker("zh_CN")
    fake.seed_instance(c.seed)
    per_building = -(-c.households_count // c.buildings)
    households: list[Household] = []
    seen_ids: set[str] = set()
    for n in range(c.households_count):
        building = n // per_building + 1
        slot = n % per_building
        unit = slot // (c.floors * 2) + 1  # two flats per landing per entrance
        floor = (slot % (c.floors * 2)) // 2 + 1
        room = f"{floor}{slot % 2 + 1:02d}"
        household_id = f"H{building:02d}{unit}{room}"
        # An ageing estate: a third of households are elderly people living alone or as couples.
        kind = rng.choices(["alone_elderly", "elderly_couple", "family", "young"], [0.2, 0.15, 0.45, 0.2])[0]
        ages = {
            "alone_elderly": [rng.randint(68, 95)],
            "elderly_couple": [rng.randint(65, 90), rng.randint(63, 90)],
            "family": [rng.randint(35, 60), rng.randint(33, 60), rng.randint(3, 25)]
            + ([rng.randint(65, 88)] if rng.random() < 0.3 else []),
            "young": [rng.randint(23, 40)] * rng.randint(1, 2),
        }[kind]
        residents = []
        for i, age in enumerate(ages):
            gender = rng.choice("MF")
            id_number = _id_number(fake, rng, age, gender, seen_ids)
            birth = date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
            digest = hashlib.sha256(f"{c.seed}:{household_id}:{i}".encode()).hexdigest()[:8]
            residents.append(
                Resident(
                    resident_id=f"R{digest}",
                    household_id=household_id,
                    name=fake.name_male() if gender == "M" else fake.name_female(),
                    id_number=id_number,
                    phone=fake.phone_number(),
                    openid=_openid(rng),
                    gender=gender,
                    birth_date=birth,
                    is_owner=i == 0,
                )
            )
        has_elderly = any(r.age >= 65 for r in residents)
        households.append(
            Household(
                household_id=household_id,
                building=building,
                unit=unit,
                floor=floor,
                room=room,
                residents=tuple(residents),
                consent_smoke_gas=rng.random() < (0.8 if has_elderly else 0.5),
                consent_elderly_care=has_elderly and rng.random() < 0.7,
            )
        )
    return households
