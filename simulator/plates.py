"""Chinese licence plates (mainland format), well-formed and malformed, from a seeded RNG."""

from __future__ import annotations

import re
import string
from random import Random

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# Real plates never use I or O: they read as 1 and 0.
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
PLATE_RE = re.compile(
    r"^[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-HJ-NP-Z][A-HJ-NP-Z0-9]{5,6}$"
)

# Cars seen in Putuo are overwhelmingly local, then from the neighbouring Yangtze-delta provinces.
_OTHER_WEIGHTS: dict[str, int] = {"苏": 20, "浙": 18, "皖": 14, "鲁": 6, "豫": 6, "赣": 5, "京": 4, "鄂": 4}
_OTHER_WEIGHTS.update({p: 2 for p in "闽川湘粤" if p not in _OTHER_WEIGHTS})
_OTHER_WEIGHTS.update({p: 1 for p in PROVINCES if p not in _OTHER_WEIGHTS and p != "沪"})
_OTHERS = list(_OTHER_WEIGHTS)
_OTHER_W = list(_OTHER_WEIGHTS.values())

MALFORMED_KINDS = ("too_short", "dash", "letter_o_i", "lowercase", "empty", "latin_only")


def is_well_formed(plate: str) -> bool:
    """True if `plate` has the shape of a real blue, yellow or green mainland plate."""
    return PLATE_RE.match(plate) is not None


def random_province(rng: Random, local_share: float = 0.7) -> str:
    """A province character: 沪 with probability `local_share`, else weighted by proximity."""
    if rng.random() < local_share:
        return "沪"
    return rng.choices(_OTHERS, weights=_OTHER_W)[0]


def ordinary_plate(rng: Random, province: str | None = None) -> str:
    """A blue (or yellow) plate: province + issuing letter + 5 serial characters."""
    head = (province or random_province(rng)) + rng.choice(PLATE_LETTERS)
    serial = []
    letters = 0
    for _ in range(5):
        # Serials are mostly digits; at most two letters appear in practice.
        if letters < 2 and rng.random() < 0.2:
            serial.append(rng.choice(PLATE_LETTERS))
            letters += 1
        else:
            serial.append(rng.choice(string.digits))
    return head + "".join(serial)


def new_energy_plate(rng: Random, province: str | None = None) -> str:
    """A green plate: province + issuing letter + 6 characters with D or F first (cars) or last (buses)."""
    head = (province or random_province(rng)) + rng.choice(PLATE_LETTERS)
    digits = "".join(rng.choice(string.digits) for _ in range(5))
    marker = rng.choice("DF")
    return head + (marker + digits if rng.random() < 0.9 else digits + marker)


def malformed_plate(rng: Random, base: str | None = None, kind: str | None = None) -> str:
    """A plate as a misreading camera or a sloppy vendor sends it; never matches PLATE_RE."""
    plate = base if base and is_well_formed(base) else ordinary_plate(rng)
    kind = kind or rng.choice(MALFORMED_KINDS)
    if kind == "too_short":
        return plate[:6]
    if kind == "dash":
        return plate[:2] + "-" + plate[2:]
    if kind == "letter_o_i":
        pos = rng.randrange(1, len(plate))
        return plate[:pos] + rng.choice("OI") + plate[pos + 1 :]
    if kind == "lowercase":
        return plate[0] + plate[1].lower() + plate[2:]
    if kind == "empty":
        return ""
    if kind == "latin_only":
        # The province character lost entirely, e.g. "ABC123".
        letters = "".join(rng.choice(string.ascii_uppercase) for _ in range(3))
        return letters + "".join(rng.choice(string.digits) for _ in range(3))
    raise ValueError(f"unknown malformed kind {kind!r}")
