"""The community's gates as the upper platform's directory knows them: /VIID/Tollgates and /VIID/APEs.

Each gate is a tollgate (卡口) with two capture devices (APE), the entry and the exit camera, the
same 20-digit codes the vehicle records carry (schemas/viid.py), so `TollgateID` and `DeviceID`
of every record resolve upstream. The object fields are those of GA/T 1400.3's APE and tollgate
objects as public implementations use them; the full required-field lists could not be read
[unverified], so each object carries the id, name, position, place code and state.
"""

from __future__ import annotations

from typing import Any

from kernel.viid_settings import ViidSettings
from schemas.viid import device_id, tollgate_id

# TollgateCat / TollgateUsage codes are not in the sources read [unverified]: 99 other, and usage
# 82 (治安卡口, public-order checkpoint) as residential-gate deployments describe themselves.
TOLLGATE_CAT, TOLLGATE_USAGE = "99", 82


def tollgates(config: ViidSettings, community_id: str) -> list[dict[str, Any]]:
    return [
        {
            "TollgateID": tollgate_id(community_id, gate.code),
            "Name": gate.name,
            "Longitude": gate.longitude,
            "Latitude": gate.latitude,
            "PlaceCode": config.place_code,
            "Status": "1",  # in use
            "TollgateCat": TOLLGATE_CAT,
            "TollgateUsage": TOLLGATE_USAGE,
            "LaneNum": 2,
            "OrgCode": config.device_id[:12],
        }
        for gate in config.gates
    ]


def apes(config: ViidSettings, community_id: str) -> list[dict[str, Any]]:
    found = []
    for gate in config.gates:
        for direction, label in (("in", "入口"), ("out", "出口")):
            found.append(
                {
                    "ApeID": device_id(community_id, gate.code, direction),
                    "Name": f"{gate.name}{label}",
                    "Model": "LPR",
                    "Longitude": gate.longitude,
                    "Latitude": gate.latitude,
                    "PlaceCode": config.place_code,
                    "IsOnline": "1",
                    "TollgateID": tollgate_id(community_id, gate.code),
                    "OrgCode": config.device_id[:12],
                }
            )
    return found
