"""The video intercom and CCTV vendor (system 5): intercom calls, camera health reports and
video-analytics events, as its open API serves them.

The vendor's records carry image fields (a snapshot URL, a Base64 picture): the hub
must never ingest them, and the connector drops them by name. Everything else is
metadata. Deterministic from the community's seed, one day at a time; faults follow the
parking simulator's style: malformed and out-of-range values, records served twice,
late updates (analytics events confirmed hours later), and an added field (drift).
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

from simulator.community import Community

CST = ZoneInfo("Asia/Shanghai")
RESOURCES = ("calls", "camera-health", "events")
EVENT_TYPES = ["loitering", "ebike_in_stairwell", "fire_lane_blocked", "littering", "climbing", "crowd"]
IMAGE_FIELDS = ("snapshotUrl", "picUrl", "bgPicBase64")  # what the vendor attaches; never ingested
Record = dict[str, Any]


@dataclass(frozen=True)
class IntercomFaults:
    """Rates of the vendor's defects."""

    malformed_rate: float = 0.01
    out_of_range_rate: float = 0.005
    duplicate_rate: float = 0.005
    late_rate: float = 0.05  # of analytics events: reviewed by the guard room hours later
    error_every: int = 0  # answer HTTP 503 to every n-th request
    added_field: bool = False  # a firmware update adds `faceFeature` to analytics events

    @classmethod
    def none(cls) -> IntercomFaults:
        """A vendor without defects."""
        return cls(malformed_rate=0.0, out_of_range_rate=0.0, duplicate_rate=0.0, late_rate=0.0)


class IntercomVendor:
    """Door stations at every entrance, cameras at entrances, gates and the fence."""

    def __init__(self, community: Community | None = None, faults: IntercomFaults | None = None) -> None:
        self.community = community or Community()
        self.faults = faults if faults is not None else IntercomFaults()
        self.cameras = [f"CAM-{b:02d}-{u}" for b, u in self.community.entrances()]
        self.cameras += [f"CAM-G{g}" for g in (1, 2)] + [f"CAM-F{n:02d}" for n in range(1, 9)]
        self._lock = threading.Lock()
        self._days: dict[tuple[str, date], list[tuple[datetime, str, Record]]] = {}
        self.fault_log: dict[str, str] = {}

    def records_updated_between(self, resource: str, since: datetime, until: datetime) -> list[Record]:
        """Records as served (duplicates included) with since <= update time < until, in order."""
        first, last = since.astimezone(CST).date() - timedelta(days=1), until.astimezone(CST).date()
        hits = []
        for n in range((last - first).days + 1):
            hits += [s for s in self._day(resource, first + timedelta(days=n)) if since <= s[0] < until]
        return [dict(s[2]) for s in sorted(hits, key=lambda s: (s[0], s[1]))]

    def ground_truth(self) -> dict[str, list[str]]:
        """The identifiers calls carry: the rooms called."""
        return {"addresses": sorted(h.address for h in self.community.households)}

    def _day(self, resource: str, day: date) -> list[tuple[datetime, str, Record]]:
        with self._lock:
            if (resource, day) not in self._days:
                self._days[(resource, day)] = self._build(resource, day)
            return self._days[(resource, day)]

    def _build(self, resource: str, day: date) -> list[tuple[datetime, str, Record]]:
        rng = Random(f"{self.community.seed}:{self.community.community_id}:{day.isoformat()}:{resource}")
        make = {"calls": self._calls, "camera-health": self._health, "events": self._events}[resource]
        served = []
        for key, record in make(rng, day):
            self._fault(rng, resource, key, record)
            entry = (datetime.fromisoformat(record["updateTime"]), key, record)
            twice = rng.random() < self.faults.duplicate_rate
            if twice:
                self.fault_log[key] = "duplicate"
            served += [entry, entry] if twice else [entry]
        return served

    def _at(self, rng: Random, day: date, first: int = 0, last: int = 24) -> datetime:
        return datetime.combine(day, time(first), CST) + timedelta(seconds=rng.randrange((last - first) * 3600))

    def _calls(self, rng: Random, day: date) -> list[tuple[str, Record]]:
        out = []
        for n in range(1, len(self.community.households) // 2 + 1):
            h = rng.choice(self.community.households)
            start = self._at(rng, day, 7, 23)
            answered = rng.random() < 0.8
            talk = rng.randint(5, 90) if answered else 0
            key = f"CALL{day:%Y%m%d}{n:05d}"
            out.append(
                (
                    key,
                    {
                        "callId": key,
                        "deviceCode": f"DS-{h.building:02d}-{h.unit}",
                        "building": h.building,
                        "unit": h.unit,
                        "calleeRoom": h.address,
                        "callType": rng.choices(["visitor", "delivery", "property"], [6, 3, 1])[0],
                        "startTime": start.isoformat(),
                        "answered": answered,
                        "talkSeconds": talk,
                        "unlocked": answered and rng.random() < 0.7,
                        "answeredVia": (rng.choice(["indoor_monitor", "app"]) if answered else "none"),
                        "updateTime": (start + timedelta(seconds=talk + rng.randint(1, 30))).isoformat(),
                        "snapshotUrl": f"http://10.20.0.{rng.randint(2, 250)}/pic/{rng.getrandbits(64):016x}.jpg",
                    },
                )
            )
        return out

    def _health(self, rng: Random, day: date) -> list[tuple[str, Record]]:
        out = []
        for hour in range(24):
            for camera in self.cameras:
                at = datetime.combine(day, time(hour), CST) + timedelta(seconds=rng.randint(0, 59))
                status = rng.choices(["online", "degraded", "offline"], [96, 3, 1])[0]
                key = f"HB{day:%Y%m%d}{hour:02d}-{camera}"
                out.append(
                    (
                        key,
                        {
                            "reportId": key,
                            "cameraCode": camera,
                            "status": status,
                            "bitrateKbps": 0 if status == "offline" else rng.randint(1800, 4096),
                            "packetLossPct": round(rng.uniform(0, 0.5 if status == "online" else 8), 2),
                            "storageDays": rng.choice([30, 30, 30, 29, 31]),
                            "reportTime": at.isoformat(),
                            "updateTime": (at + timedelta(seconds=rng.randint(1, 5))).isoformat(),
                        },
                    )
                )
        return out

    def _events(self, rng: Random, day: date) -> list[tuple[str, Record]]:
        out = []
        for n in range(1, rng.randint(20, 40) + 1):
            start = self._at(rng, day)
            late = rng.random() < self.faults.late_rate  # reviewed by the guard room hours later
            updated = start + (timedelta(hours=rng.randint(2, 8)) if late else timedelta(seconds=rng.randint(2, 20)))
            key = f"EV{day:%Y%m%d}{n:04d}"
            record = {
                "eventId": key,
                "cameraCode": rng.choice(self.cameras),
                "eventType": rng.choice(EVENT_TYPES),
                "confidence": round(rng.uniform(0.55, 0.99), 2),
                "startTime": start.isoformat(),
                "durationSeconds": rng.randint(3, 600),
                "status": "confirmed" if late else "new",
                "updateTime": updated.isoformat(),
                "picUrl": f"http://10.20.0.{rng.randint(2, 250)}/alarm/{rng.getrandbits(64):016x}.jpg",
                "bgPicBase64": base64.b64encode(rng.randbytes(48)).decode("ascii"),
            }
            if self.faults.added_field:
                record["faceFeature"] = base64.b64encode(rng.randbytes(24)).decode("ascii")
            if late:
                self.fault_log[key] = "late"
            out.append((key, record))
        return out

    def _fault(self, rng: Random, resource: str, key: str, record: Record) -> None:
        u = rng.random()
        value: Any
        if u < self.faults.malformed_rate:
            field, value = {
                "calls": ("callType", "未知"),
                "camera-health": ("status", "OFFLINE!"),
                "events": ("confidence", "high"),
            }[resource]
            record[field] = value
            self.fault_log[key] = "malformed"
        elif u < self.faults.malformed_rate + self.faults.out_of_range_rate:
            field, value = {
                "calls": ("talkSeconds", -5),
                "camera-health": ("packetLossPct", 140.0),
                "events": ("confidence", 1.7),
            }[resource]
            record[field] = value
            self.fault_log[key] = "out_of_range"
