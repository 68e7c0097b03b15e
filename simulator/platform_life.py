"""Community life on the WeChat platform: volunteer sign-ups, repair requests, neighbour-circle
posts and consent changes, for one day (the rest of the day is in platform_activity.py)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from simulator.community import Household, Resident
from simulator.platform_activity import ACTIVITIES, LIKES_JOB_AT, PlatformDay, Row, Write, changed
from simulator.platform_text import CIRCLES, REPAIR_CATEGORIES, post_text, repair_text


def volunteers(d: PlatformDay) -> list[Write]:
    rng = d.rng("volunteers")
    out = []
    for _, v in sorted(d.view.get("volunteers", {}).items()):
        if v["status"] == "signed_up" and v["activity_start"].date() < d.day:
            attended = rng.random() < 0.85
            hours = round(rng.uniform(1, 4) * 2) / 2 if attended else None
            status = "attended" if attended else "absent"
            out.append(("volunteers", changed(v, d.at(rng, 20, 22), status=status, hours=hours)))
    adults = [r for r in d.community.residents if 18 <= r.age <= 75]
    for i in range(1, rng.randint(3, 8) + 1):
        r = rng.choice(adults)
        start = datetime.combine(d.day + timedelta(days=rng.randint(1, 3)), time(rng.choice([9, 14])))
        out.append(
            d.write(
                "volunteers",
                signup_id=f"V{d.day:%Y%m%d}{i:03d}",
                resident_id=r.resident_id,
                activity=rng.choice(ACTIVITIES),
                activity_start=start,
                hours=None,
                status="signed_up",
                updated_at=d.at(rng, 8, 22),
            )
        )
    return out


def repairs(d: PlatformDay) -> list[Write]:
    rng = d.rng("repairs")
    out = []
    for _, w in sorted(d.view.get("repairs", {}).items()):
        age = (d.day - w["submitted_at"].date()).days
        if w["status"] == "submitted" and age >= 1:
            out.append(("repairs", changed(w, d.at(rng, 8, 10), status="assigned")))
        elif w["status"] == "assigned" and age >= 2 and rng.random() < 0.7:
            when = d.at(rng, 10, 18)
            rating = rng.choices([5, 4, 3, 2, 1], [50, 30, 10, 6, 4])[0] if rng.random() < 0.7 else None
            out.append(("repairs", changed(w, when, status="resolved", resolved_at=when, rating=rating)))
    for i in range(1, rng.randint(3, 8) + 1):
        h = rng.choice(d.community.households)
        category = rng.choice(sorted(REPAIR_CATEGORIES))
        when = d.at(rng, 6, 23)
        out.append(
            d.write(
                "repairs",
                request_id=f"W{d.day:%Y%m%d}{i:03d}",
                household_id=h.household_id,
                category=category,
                description=repair_text(rng, h, rng.choice(h.residents), category),
                status="submitted",
                submitted_at=when,
                resolved_at=None,
                rating=None,
                updated_at=when,
            )
        )
    return out


def posts(d: PlatformDay) -> list[Write]:
    rng = d.rng("posts")
    current = d.view.get("circle_posts", {})
    yesterday = d.day - timedelta(days=1)
    out: dict[str, Row] = {}
    for key in sorted(k for k, p in current.items() if p["posted_at"].date() == yesterday and not p["deleted"]):
        if rng.random() < 0.03:
            out[key] = changed(current[key], d.at(rng, 8, 22), deleted=True)
    by_building: dict[int, list[Resident]] = {}
    for home in d.community.households:
        by_building.setdefault(home.building, []).extend(home.residents)
    for i in range(1, rng.randint(8, 16) + 1):
        h: Household = rng.choice(d.community.households)
        circle = rng.choice(CIRCLES)
        when = d.at(rng, 6, 24)
        key = f"C{d.day:%Y%m%d}{i:03d}"
        content = post_text(rng, circle, rng.choice(h.residents), rng.choice(by_building[h.building]), h.building)
        out[key] = d.row(
            post_id=key,
            resident_id=rng.choice(h.residents).resident_id,
            circle=circle,
            content=content,
            likes=0,
            deleted=False,
            posted_at=when,
            updated_at=when,
        )
    job = datetime.combine(d.day, LIKES_JOB_AT)
    for key, post in sorted({**current, **out}.items()):
        if post["posted_at"].date() >= yesterday and post["posted_at"] < job and post["updated_at"] < job:
            out[key] = changed(post, job, likes=post["likes"] + rng.randint(0, 12))
    return [("circle_posts", row) for row in out.values()]


def consent(d: PlatformDay) -> list[Write]:
    rng = d.rng("consent")
    current = d.view.get("consent", {})
    out = []
    for key in rng.sample(sorted(current), min(len(current), rng.randint(2, 5))):
        when = d.at(rng, 8, 22)
        out.append(("consent", changed(current[key], when, granted=not current[key]["granted"], changed_at=when)))
    return out
