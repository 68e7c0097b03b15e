"""The day the platform went live: households, residents and their consent, imported in one
go, every row stamped with the same `updated_at` (over a thousand rows sharing one time)."""

from __future__ import annotations

from datetime import datetime, timedelta
from random import Random

from simulator.community import Resident
from simulator.platform_activity import IMPORT_AT, PlatformDay, Row, Write


def go_live_import(d: PlatformDay) -> list[Write]:
    """Every household, resident and consent, imported at once when the platform went live."""
    when = datetime.combine(d.day, IMPORT_AT)
    since = datetime(2019, 6, 1, 9)
    rng = Random(f"{d.seed}:{d.community.community_id}:import")
    out: list[Write] = []
    for h in d.community.households:
        area = round(rng.uniform(45, 95), 1)
        out.append(
            d.write(
                "households",
                household_id=h.household_id,
                building=h.building,
                unit=h.unit,
                floor=h.floor,
                address=h.address,
                area_m2=area,
                arrears_fen=0,
                created_at=since,
                updated_at=when,
            )
        )
        for r in h.residents:
            verified = rng.random() < 0.8
            out.append(("residents", _resident_row(d, r, verified, rng, since, when)))
        functions = {
            "smoke_gas": h.consent_smoke_gas,
            **({"elderly_care": h.consent_elderly_care} if h.elderly else {}),
        }
        for function, granted in functions.items():
            out.append(
                d.write(
                    "consent",
                    consent_id=f"{h.household_id}-{function}",
                    household_id=h.household_id,
                    function=function,
                    granted=granted,
                    changed_at=since,
                    updated_at=when,
                )
            )
    return out


def _resident_row(d: PlatformDay, r: Resident, verified: bool, rng: Random, since: datetime, when: datetime) -> Row:
    verified_at = since + timedelta(days=rng.randrange(1, 2000)) if verified else None
    return d.row(
        resident_id=r.resident_id,
        household_id=r.household_id,
        name=r.name,
        id_number=r.id_number,
        phone=r.phone,
        openid=r.openid,
        gender=r.gender,
        age=r.age,
        is_owner=r.is_owner,
        verified=verified,
        verified_at=verified_at,
        created_at=since,
        updated_at=when,
    )
