"""The source streams this hub knows: name, system, cadence, and where the class lives.

Kept free of heavy imports: Airflow parses the DAG files that read this registry, and
the connector classes are imported only when a task runs (`make_stream`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from connectors.base import Stream
from neuron.errors import ConfigError
from neuron.settings import Settings


@dataclass(frozen=True)
class StreamSpec:
    """How one stream is declared to the hub."""

    name: str
    system: int  # 1–9, the seed's numbering (DESIGN.md)
    schedule: str  # cron, in the hub's timezone: when its ingest DAG runs
    target: str  # "module:Class"; the class takes the hub's Settings
    title: str


STREAMS: dict[str, StreamSpec] = {
    spec.name: spec
    for spec in [
        StreamSpec(
            "vehicle_passes",
            1,
            "0 * * * *",
            "connectors.vehicle_passes:VehiclePasses",
            "Vehicle gate passes (parking vendor HTTP API)",
        ),
        # Issue 3: parking charges, door access (file drop), intercom/CCTV (HTTP), WeChat platform (SQL).
        StreamSpec(
            "parking_charges",
            1,
            "0 * * * *",
            "connectors.parking_charges:ParkingCharges",
            "Visitor parking charges (parking vendor HTTP API)",
        ),
        StreamSpec(
            "door_access",
            4,
            "0 6 * * *",
            "connectors.door_access:DoorAccess",
            "Door access events per entrance (daily GBK CSV export, file drop)",
        ),
        StreamSpec(
            "intercom_calls",
            5,
            "0 * * * *",
            "connectors.intercom_calls:IntercomCalls",
            "Video intercom calls (vendor HTTP API)",
        ),
        StreamSpec(
            "camera_health",
            5,
            "0 * * * *",
            "connectors.camera_health:CameraHealth",
            "CCTV camera health (vendor HTTP API)",
        ),
        StreamSpec(
            "video_events",
            5,
            "0 * * * *",
            "connectors.video_events:VideoEvents",
            "Video-analytics events, metadata only (vendor HTTP API)",
        ),
        StreamSpec(
            "platform_residents",
            9,
            "0 * * * *",
            "connectors.platform_residents:PlatformResidents",
            "Residents registered and real-name verified (WeChat platform database)",
        ),
        StreamSpec(
            "platform_households",
            9,
            "0 * * * *",
            "connectors.platform_households:PlatformHouseholds",
            "Households, rooms and fee arrears (WeChat platform database)",
        ),
        StreamSpec(
            "platform_notices",
            9,
            "0 * * * *",
            "connectors.platform_notices:PlatformNotices",
            "Notices to residents (WeChat platform database)",
        ),
        StreamSpec(
            "platform_fee_payments",
            9,
            "0 * * * *",
            "connectors.platform_fee_payments:PlatformFeePayments",
            "Property and parking fee payments (WeChat platform database)",
        ),
        StreamSpec(
            "platform_votes",
            9,
            "0 * * * *",
            "connectors.platform_votes:PlatformVotes",
            "Owners' e-vote ballots per motion (WeChat platform database)",
        ),
        StreamSpec(
            "platform_volunteers",
            9,
            "0 * * * *",
            "connectors.platform_volunteers:PlatformVolunteers",
            "Volunteer sign-ups and hours (WeChat platform database)",
        ),
        StreamSpec(
            "platform_repairs",
            9,
            "0 * * * *",
            "connectors.platform_repairs:PlatformRepairs",
            "Repair requests (WeChat platform database)",
        ),
        StreamSpec(
            "platform_circle_posts",
            9,
            "0 * * * *",
            "connectors.platform_circle_posts:PlatformCirclePosts",
            "Neighbour-circle posts (WeChat platform database)",
        ),
        StreamSpec(
            "platform_consent",
            9,
            "0 * * * *",
            "connectors.platform_consent:PlatformConsent",
            "Consent to optional functions (WeChat platform database)",
        ),
        # MQTT streams: `neuron collect` lands them as they arrive; the hourly run reads the
        # hour's landed batches (alarms too, for history: the real-time path is the relay).
        StreamSpec(
            "nonmotor_passes",
            2,
            "0 * * * *",
            "connectors.nonmotor_passes:NonmotorPasses",
            "Non-motor-vehicle gate passes (MQTT)",
        ),
        StreamSpec(
            "fence_events",
            3,
            "0 * * * *",
            "connectors.fence_events:FenceEvents",
            "Perimeter fence zone status and intrusion alarms (MQTT)",
        ),
        StreamSpec(
            "home_safety",
            6,
            "0 * * * *",
            "connectors.home_safety:HomeSafety",
            "In-home smoke and gas detector readings and alarms, opted-in households (MQTT)",
        ),
        StreamSpec(
            "elderly_care",
            6,
            "0 * * * *",
            "connectors.elderly_care:ElderlyCare",
            "Elderly-care wristbands: heart rate, falls, SOS, opted-in households (MQTT)",
        ),
        StreamSpec(
            "environment",
            7,
            "0 * * * *",
            "connectors.environment:Environment",
            "Public-area environment: PM2.5, PM10, noise, temperature, humidity (MQTT)",
        ),
        StreamSpec(
            "streetlights",
            8,
            "0 * * * *",
            "connectors.streetlights:Streetlights",
            "Smart streetlights: state, energy, faults (MQTT)",
        ),
        StreamSpec(
            "manhole_covers",
            8,
            "0 * * * *",
            "connectors.manhole_covers:ManholeCovers",
            "Smart manhole covers: tilt, open, water-level status and alarms (MQTT)",
        ),
        # Issue 7: the relay records alarm lifecycles in the control DB as they happen (SQL family).
        StreamSpec(
            "alarm_lifecycle",
            3,
            "*/15 * * * *",
            "connectors.alarm_lifecycle:AlarmLifecycle",
            "Alarm lifecycle events recorded by the real-time relay (control database, SQL)",
        ),
    ]
}


def make_stream(name: str, settings: Settings) -> Stream:
    """The configured stream called `name`."""
    try:
        spec = STREAMS[name]
    except KeyError:
        raise ConfigError(f"unknown stream {name!r}; known: {', '.join(sorted(STREAMS))}") from None
    module, _, cls = spec.target.partition(":")
    stream: Stream = getattr(importlib.import_module(module), cls)(settings)
    return stream
