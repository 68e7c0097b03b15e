"""System 1, parking charges: what visitors paid at the exit, from the parking vendor's HTTP API."""

from __future__ import annotations

from connectors.parking_api import ParkingApiStream


class ParkingCharges(ParkingApiStream):
    """Charges updated in a window, from `/api/v2/parking-charges`."""

    name = "parking_charges"
    path = "/api/v2/parking-charges"
