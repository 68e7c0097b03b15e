"""GA/T 1400 (VIID) MotorVehicleObject: one `traffic.vehicle_passes` row as public-security platforms
take it, shared by the export API's `viid` format (api/format_viid.py) and the cascade to the upper
VIID platform (peers/viid/). See docs/formats.md for the whole mapping and its limits.

The plate is never more than the consumer's policy grants: the published `plate_no` exactly as
the policy treated it (sealed to the consumer's key, its pseudonym, or a mask); a policy that
drops the plate gives no `PlateNo`. Published partitions never hold a raw plate (a policy cannot
`keep` a direct identifier), and as a last line of defence a value that reads like a raw plate
stops the response instead of leaving the hub.

`PlateNo` is string(15) (GA/T 1400.3 A.11). A treated plate that fits (a mask) goes there as it
is. One that does not — a plate sealed to public security's key is ~100 characters, a
pseudonym may be longer than 15 — goes whole into `PlateNoSealed`, a member of our own beside
the standard's, and `PlateNo` carries a 15-character alias of it (`plate_alias`). Ambiguous in
the standard: its object schemas name their members but define no extension member, and
neither forbids others; the platforms we know of (and our peer, simulator/viid_records.py)
ignore members they do not know. We chose an extra member over bending PlateNo's length or
squeezing the value into a descriptive field (PlateDescribe is string(64), too short), and
over sending clear plates: public security's policy entitles it to the plate sealed only
(config/policies/public_security.yaml), and that holds on this channel too. The alias is
keyed: it is derived from the treated value, which only the hub's keys make (sealing and
pseudonyms are keyed), so it names the same vehicle the same way for that consumer, in a
recipient-key period, and nothing else; the key holder opens `PlateNoSealed` for the plate.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from kernel.errors import IntegrityError
from schemas.contract import load_contract

LOCAL = ZoneInfo("Asia/Shanghai")  # PassTime is local time (GA/T 1400 has no zone designator)


# GA/T 1400 colour codes (PlateColor, VehicleColor) and GA 24.7 plate classes, by the plate
# colour the parking vendor reports. White (police, armed police) and black (embassy, consulate,
# Hong Kong/Macau) plates span several classes: no class is claimed for them.
PLATE_COLOR = {"black": "1", "white": "2", "blue": "5", "yellow": "6", "green": "9"}
PLATE_CLASS = {"yellow": "01", "blue": "02", "green": "52"}  # large, small, small new-energy vehicle
OTHER_COLOR = "99"  # the gate reports no body colour; VehicleColor is required, so: 99 (other)

# Where each gate stands (deployment data: simulator/parking.py GATES, G1 北门, G2 南门). VIID's
# Direction is a compass heading (1 E→W, 2 W→E, 3 S→N, 4 N→S); a car entering through the
# north gate drives north to south. A gate not listed here gets no Direction.
GATE_SIDES = {("music-square", "G1"): "north", ("music-square", "G2"): "south"}
HEADING = {
    ("north", "in"): "4",
    ("north", "out"): "3",
    ("south", "in"): "3",
    ("south", "out"): "4",
    ("east", "in"): "1",
    ("east", "out"): "2",
    ("west", "in"): "2",
    ("west", "out"): "1",
}

# GB/T 28181 20-digit device codes: centre (Putuo 310107 + "00"), industry 01 (social security,
# community access), type 132 (network camera), then a 7-digit serial of ours. A deployment that
# registers with a real VIID platform substitutes the codes the platform assigns.
CENTRE, INDUSTRY, CAMERA = "31010700", "01", "132"
IMAGE, MOTOR_VEHICLE = "02", "02"  # the sub-type digits of SourceID and MotorVehicleID
# The gate itself (卡口, TollgateID): the full GA/T 1400 type-code list could not be read
# [unverified]; 119 is the type of the one gate device seen in a public usage document
# (34020000001190000001), so gates are numbered with it.
TOLLGATE = "119"

PLATE_NO_MAX = 15  # A.11: PlateNo is string(15)
SEALED_PLATE = "PlateNoSealed"  # our member for a treated plate longer than that (module doc)
ALIAS_PREFIX = "NH"  # never how a real plate starts (a province's character), so never taken for one


def plate_alias(treated: str) -> str:
    """A 15-character stand-in for a treated plate too long for PlateNo: "NH" + 13 base32 characters
    (65 bits) of its SHA-256. Keyed in effect: only the hub's keys make the treated value."""
    digest = base64.b32encode(hashlib.sha256(treated.encode()).digest()).decode()
    return ALIAS_PREFIX + digest[: PLATE_NO_MAX - len(ALIAS_PREFIX)]


@dataclass(frozen=True)
class Pass:
    """What one published pass row says (absent fields: the policy did not grant them)."""

    community_id: str
    gate_code: str | None
    direction: str | None
    pass_time: datetime | None
    day: date | None
    plate: str | None
    plate_color: str | None
    new_energy: bool | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> Pass:
        return cls(
            community_id=str(row.get("community_id") or ""),
            gate_code=row.get("gate_code"),
            direction=row.get("direction"),
            pass_time=row.get("pass_time"),
            day=row.get("day"),
            plate=row.get("plate_no"),
            plate_color=row.get("plate_color"),
            new_energy=row.get("new_energy"),
        )


@cache
def raw_plate() -> re.Pattern[str]:
    """What a raw plate looks like: the vehicle_passes contract's own check of `plate_no`."""
    pattern = next(f.checks.pattern for f in load_contract("vehicle_passes").fields if f.name == "plate_no")
    assert pattern, "the vehicle_passes contract checks plate_no"
    return re.compile(pattern)


def _digits(text: str, width: int) -> str:
    """A stable `width`-digit number for `text`."""
    return str(int(hashlib.sha256(text.encode()).hexdigest(), 16) % 10**width).zfill(width)


@lru_cache(maxsize=1024)  # a handful of cameras per community
def device_id(community_id: str, gate_code: str | None, direction: str | None) -> str:
    """The 20-digit code of the gate's camera for that direction (entry and exit are two cameras)."""
    number = gate_code[1:] if gate_code and re.fullmatch(r"G\d{1,3}", gate_code) else None
    gate = number.zfill(3) if number else _digits(f"gate\x1f{gate_code}", 3)
    way = {"in": "1", "out": "2"}.get(direction or "", "0")
    return CENTRE + INDUSTRY + CAMERA + _digits(f"community\x1f{community_id}", 3) + gate + way


@lru_cache(maxsize=256)
def tollgate_id(community_id: str, gate_code: str | None) -> str:
    """The 20-digit code of the gate (卡口) both of its cameras belong to."""
    camera = device_id(community_id, gate_code, None)
    return CENTRE + INDUSTRY + TOLLGATE + camera[13:19] + "0"


def pass_time_text(moment: datetime | None) -> str | None:
    """`yyyyMMddHHmmss` in Shanghai time; a pass without its time (not granted) has none."""
    if moment is None:
        return None
    if moment.tzinfo is None:  # feeds hold UTC
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(LOCAL).strftime("%Y%m%d%H%M%S")


def _serial(record: Pass) -> str:
    # Five digits that tell apart passes of one camera in one second (physically, there are none).
    identity = "\x1f".join(str(v) for v in (record.community_id, record.gate_code, record.direction))
    moment = record.pass_time.isoformat() if record.pass_time else ""
    return _digits(f"{identity}\x1f{moment}\x1f{record.plate}", 5)


def _plate_codes(record: Pass) -> dict[str, str]:
    colour = record.plate_color or ("green" if record.new_energy else None)
    codes = {}
    if colour in PLATE_CLASS:
        codes["PlateClass"] = PLATE_CLASS[colour]
    if colour in PLATE_COLOR:
        codes["PlateColor"] = PLATE_COLOR[colour]
    return codes


def motor_vehicle(record: Pass) -> dict[str, Any]:
    """One MotorVehicleObject: the standard's field names, codes and time format."""
    camera = device_id(record.community_id, record.gate_code, record.direction)
    when = pass_time_text(record.pass_time)
    # A policy that withholds the time of the pass: the capture is dated by its day.
    stamp = when or (record.day.strftime("%Y%m%d") + "000000" if record.day else "0" * 14)
    source_id = camera + IMAGE + stamp + _serial(record)
    vehicle: dict[str, Any] = {
        "MotorVehicleID": source_id + MOTOR_VEHICLE + "00001",
        "InfoKind": 1,  # automatic capture
        "SourceID": source_id,
        "DeviceID": camera,
    }
    side = GATE_SIDES.get((record.community_id, record.gate_code or ""))
    if side and (side, record.direction) in HEADING:
        vehicle["Direction"] = HEADING[(side, str(record.direction))]
    if when:
        vehicle["PassTime"] = when
    vehicle["HasPlate"] = "1"  # every recorded pass was recognised by its plate
    vehicle |= _plate_codes(record)
    if record.plate is not None:
        if raw_plate().search(record.plate):
            raise IntegrityError("a raw plate reached the VIID renderer: the response is withheld")
        if len(record.plate) <= PLATE_NO_MAX:
            vehicle["PlateNo"] = record.plate
        else:  # sealed or a long pseudonym: whole in our member, an alias within PlateNo's length
            vehicle["PlateNo"] = plate_alias(record.plate)
            vehicle[SEALED_PLATE] = record.plate
    vehicle["VehicleColor"] = OTHER_COLOR
    # The box of the vehicle in the capture image: required for automatic capture, but no image
    # ever leaves the hub, so the box is empty.
    vehicle |= {"LeftTopX": 0, "LeftTopY": 0, "RightBtmX": 0, "RightBtmY": 0}
    return vehicle
