"""What each device family sends in one hour: readings on their schedules, alarms by chance.

Shanghai in late autumn: PM2.5 around 35 µg/m³ with rush-hour peaks, 10–18 °C, lamps on
from dusk to dawn and dimmed after 23:00, e-bikes out in the morning and back in the
evening, smoke alarms at meal times, wristbands taken off at night to charge. Alarms
are raised and later cleared with the same alarm id.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime, timedelta
from random import Random
from typing import Any

from simulator.devices import VEHICLES, Device, DeviceFleet, Message

NONMOTOR_CURVE = (1, 0.5, 0.3, 0.3, 0.5, 2, 6, 14, 16, 8, 6, 7, 8, 6, 6, 7, 9, 14, 15, 10, 6, 4, 2, 1)
EPOCH = date(2026, 1, 1)  # meters and batteries are reckoned from here


def poisson(rng: Random, lam: float) -> int:
    """A Poisson draw (Knuth's method for small means, a normal approximation for large)."""
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k, p = k + 1, p * rng.random()
    return k


def day_rng(fleet: DeviceFleet, day: date, what: str) -> Random:
    """A random stream for a whole day (weather, daily baselines), independent of the hour asked."""
    return Random(f"{fleet.community.seed}:{fleet.community_id}:{day.isoformat()}:{what}")


def _offset(device: Device, period_s: int) -> int:
    """A device's fixed second within its reporting period, so devices do not all speak at once."""
    return int(device.device_id[-4:].encode().hex(), 16) % period_s


class Hour:
    """Builds one hour's messages of one family."""

    def __init__(self, fleet: DeviceFleet, hour: datetime, family: str) -> None:
        self.fleet, self.hour, self.h = fleet, hour, hour.hour
        self.rng = Random(f"{fleet.community.seed}:{fleet.community_id}:{hour.isoformat()}:{family}")
        self.messages: list[Message] = []

    def at(self) -> datetime:
        return self.hour + timedelta(seconds=self.rng.randrange(3600))

    def send(self, device: Device, kind: str, at: datetime, fields: dict[str, Any]) -> None:
        msg_id = f"{self.rng.getrandbits(128):032x}"
        payload = {"msg_id": msg_id, "device_id": device.device_id, "event_time": at.isoformat(), **fields}
        topic = device.topic(self.fleet.community_id, kind)
        self.messages.append(Message(at, device.stream, topic, msg_id, payload))

    def alarm(self, device: Device, at: datetime, fields: dict[str, Any], clear_after: tuple[int, int]) -> None:
        """An alarm raised at `at` and cleared a few minutes (seconds range) later."""
        alarm_id = f"A{self.rng.getrandbits(60):015X}"
        self.send(device, "alarm", at, {**fields, "alarm_id": alarm_id, "alarm_state": "raised"})
        cleared = at + timedelta(seconds=self.rng.randint(*clear_after))
        self.send(device, "alarm", cleared, {**fields, "alarm_id": alarm_id, "alarm_state": "cleared"})


def nonmotor(b: Hour) -> None:
    """Sensing-gate passes: tagged e-bikes of residents, untagged visitors."""
    daily = len(b.fleet.tags) * 2.2 / 0.85
    for _ in range(poisson(b.rng, daily * NONMOTOR_CURVE[b.h] / sum(NONMOTOR_CURVE))):
        visitor = b.rng.random() < 0.15
        fields = {
            "direction": "in" if b.rng.random() < (0.3 if b.h < 12 else 0.65) else "out",
            "vehicle": b.rng.choice(VEHICLES),
            "passer": "visitor" if visitor else "resident",
            "tag_id": None if visitor else b.rng.choice(b.fleet.tags)[0],
        }
        b.send(b.rng.choice(b.fleet.gates), "telemetry", b.at(), fields)


def fence(b: Hour) -> None:
    """Zone status every five minutes; alarms (mostly wind and birds at night) now and then."""
    for zone in b.fleet.fence:
        start = _offset(zone, 300)
        for k in range(12):
            at = b.hour + timedelta(seconds=start + 300 * k)
            state = "armed" if b.rng.random() > 0.002 else "fault"
            voltage = round(b.rng.gauss(8.5, 0.3), 2)
            b.send(zone, "status", at, {**zone.info, "zone_state": state, "voltage_kv": voltage})
        if b.rng.random() < (0.012 if b.h >= 22 or b.h < 6 else 0.003):
            kind = b.rng.choices(("intrusion", "tamper", "line_cut", "short_circuit"), (0.7, 0.1, 0.1, 0.1))[0]
            severity = {"intrusion": "major", "line_cut": "critical"}.get(kind, "minor")
            b.alarm(zone, b.at(), {**zone.info, "alarm_type": kind, "severity": severity}, (120, 900))


def _battery(device: Device, day: date, per_day: float) -> int:
    start = 60 + int(device.device_id[-2:], 16) % 40
    return max(0, min(100, round(start - (day - EPOCH).days * per_day) % 101))


def home_safety(b: Hour) -> None:
    """Hourly detector heartbeats with their reading; smoke at meal times, gas leaks rarely."""
    meal = b.h in (11, 12, 17, 18, 19)
    for d in b.fleet.detectors:
        at = b.hour + timedelta(seconds=_offset(d, 3600))
        smoke = d.info["detector"] == "smoke"
        fields = {
            **d.info,
            "smoke_obscuration_pct": round(abs(b.rng.gauss(0.05, 0.03)), 3) if smoke else None,
            "gas_lel_pct": None if smoke else round(abs(b.rng.gauss(0.5, 0.3)), 2),
            "battery_pct": _battery(d, b.hour.date(), 0.15),
        }
        b.send(d, "telemetry", at, fields)
        if b.rng.random() < ((0.0008 if meal else 0.00005) if smoke else 0.0001):
            reading = {"smoke_obscuration_pct": round(b.rng.uniform(8, 20), 2)} if smoke else {}
            if not smoke:
                reading = {"gas_lel_pct": round(b.rng.uniform(15, 45), 1)}
            alarm = {**d.info, **reading, "alarm_type": d.info["detector"], "severity": "critical"}
            b.alarm(d, b.at(), alarm, (90, 600))


def wristbands(b: Hour) -> None:
    """Heart rate and steps every 15 minutes; off the wrist at night for many; falls and SOS rarely."""
    night = b.h >= 22 or b.h < 6
    for band in b.fleet.wristbands:
        base = {k: v for k, v in band.info.items() if k != "resting_hr"}
        habit = int(band.device_id[-3:], 16)  # the wearer's habits: charging at night, daily steps
        charging = night and habit % 10 < 3
        for k in range(4):
            at = b.hour + timedelta(seconds=_offset(band, 900) + 900 * k)
            active = 0 if night else 6
            rate = None if charging else round(band.info["resting_hr"] + active + b.rng.gauss(0, 4))
            steps = max(0, min(b.h, 21) - 6) * (150 + habit % 450) + k * 30
            fields = {**base, "heart_rate_bpm": rate, "steps": steps, "worn": not charging}
            b.send(band, "telemetry", at, {**fields, "battery_pct": max(5, 100 - (b.h + 4) % 24 * 3)})
        roll = b.rng.random()
        if not charging and roll < 0.0009:
            kind = "sos" if roll < 0.0004 else "fall" if roll < 0.0006 else "heart_rate_high"
            extra = {"heart_rate_bpm": b.rng.randint(130, 165)} if kind == "heart_rate_high" else {}
            severity = "major" if kind == "heart_rate_high" else "critical"
            b.alarm(band, b.at(), {**base, **extra, "alarm_type": kind, "severity": severity}, (180, 1500))


def environment(b: Hour) -> None:
    """One reading a minute per station: smooth daily curves plus sensor noise."""
    day = day_rng(b.fleet, b.hour.date(), "air")
    pm_base, temp_base, humid_base = day.lognormvariate(math.log(35), 0.35), day.uniform(11, 16), day.uniform(62, 80)
    for i, station in enumerate(b.fleet.stations):
        for minute in range(60):
            at = b.hour + timedelta(minutes=minute, seconds=7 * i)
            t = b.h + minute / 60
            rush = 1 + 0.25 * (math.exp(-((t - 8) ** 2) / 2) + math.exp(-((t - 18.5) ** 2) / 2))
            pm25 = max(1.0, pm_base * rush * (0.92 + 0.03 * i) + b.rng.gauss(0, 1.5))
            busy = 7 <= b.h < 22
            fields = {
                "location": station.info["location"],
                "pm25": round(pm25, 1),
                "pm10": round(pm25 * (1.5 + 0.05 * i) + b.rng.gauss(0, 2), 1),
                "noise_db": round((56 if busy else 42) + (5 if busy and i == 3 else 0) + b.rng.gauss(0, 2), 1),
                "temperature_c": round(temp_base + 4 * math.sin((t - 9) / 24 * 2 * math.pi) + b.rng.gauss(0, 0.2), 1),
                "humidity_pct": round(humid_base - 10 * math.sin((t - 9) / 24 * 2 * math.pi), 1),
            }
            b.send(station, "telemetry", at, fields)


def _lamp_level(t: float) -> int:
    """Brightness at local hour t: on from dusk (17:15) to dawn (06:30), half after 23:00."""
    if 6.5 <= t < 17.25:
        return 0
    return 50 if t >= 23 or t < 5 else 100


def streetlights(b: Hour) -> None:
    """Lamp state, power and energy meter every 15 minutes; faults now and then at night."""
    days = (b.hour.date() - EPOCH).days
    for lamp in b.fleet.lamps:
        rated = lamp.info["rated_w"]
        base = 200 + int(lamp.device_id[-3:]) * 7.3 + days * rated * 11.6 / 1000
        for k in range(4):
            at = b.hour + timedelta(seconds=_offset(lamp, 900) + 900 * k)
            level = _lamp_level(b.h + k / 4)
            fields = {
                "lamp_state": "off" if level == 0 else "dimmed" if level < 100 else "on",
                "brightness_pct": level,
                "power_w": round(rated * level / 100 * b.rng.uniform(0.95, 1.05) + 0.3, 1),
                "energy_kwh": round(base + rated * level / 100 * (b.h + k / 4) / 1000, 2),
                "voltage_v": round(b.rng.gauss(220, 3), 1),
            }
            b.send(lamp, "telemetry", at, fields)
        if _lamp_level(b.h) and b.rng.random() < 0.0006:
            fault = b.rng.choice(("lamp_failure", "driver_fault", "power_loss", "leakage"))
            severity = "major" if fault == "leakage" else "minor"
            b.alarm(lamp, b.at(), {"fault_code": fault, "severity": severity}, (2 * 3600, 8 * 3600))


def manholes(b: Hour) -> None:
    """Hourly cover status; opened for maintenance by day, flooded on rainy days."""
    rainy = day_rng(b.fleet, b.hour.date(), "rain").random() < 0.3
    for cover in b.fleet.covers:
        level = b.rng.uniform(30, 80) if rainy and cover.info["cover_type"] == "rainwater" else b.rng.uniform(5, 20)
        fields = {
            **cover.info,
            "cover_state": "closed",
            "tilt_deg": round(abs(b.rng.gauss(0.4, 0.3)), 1),
            "water_level_cm": round(level, 1),
            "battery_pct": _battery(cover, b.hour.date(), 0.05),
        }
        b.send(cover, "status", b.hour + timedelta(seconds=_offset(cover, 3600)), fields)
        roll = b.rng.random()
        if (8 <= b.h < 17 and roll < 0.0015) or (level > 70 and roll < 0.05):
            kind = "water_level" if level > 70 else "open"
            alarm = {**cover.info, "alarm_type": kind, "severity": "major", "water_level_cm": round(level, 1)}
            b.alarm(cover, b.at(), alarm, (600, 3600))


FAMILIES: dict[str, Callable[[Hour], None]] = {
    "nonmotor-gate": nonmotor,
    "fence": fence,
    "home-safety": home_safety,
    "wristband": wristbands,
    "environment": environment,
    "streetlight": streetlights,
    "manhole": manholes,
}


def hour_messages(fleet: DeviceFleet, hour: datetime, families: tuple[str, ...] | None = None) -> list[Message]:
    """Every message the fleet's devices send about events of one hour (alarm clears may follow later)."""
    out: list[Message] = []
    for family, build in FAMILIES.items():
        if families is None or family in families:
            b = Hour(fleet, hour, family)
            build(b)
            out += b.messages
    return out
