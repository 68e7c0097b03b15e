"""System 1, vehicle gate passes, from the parking vendor's HTTP API."""

from __future__ import annotations

from connectors.parking_api import ParkingApiStream


class VehiclePasses(ParkingApiStream):
    """Passes through the gates: plate, gate, direction, time, resident or visitor."""

    name = "vehicle_passes"
    path = "/api/v2/vehicle-passes"
