"""The carrier inbox's settings (`[inbox]`, connectors/carrier/): kept free of uvicorn, SQLite and
paho so the hub's `Settings` can declare `inbox: InboxSettings` without slowing the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator


class CarrierProduct(BaseModel):
    """One carrier product (a device model registered on the carrier's platform) and its decoder."""

    carrier: Literal["ctwing", "onenet"]
    product_id: str
    decoder: str  # a name in connectors/carrier/decoders.py DECODERS
    # A device of this product that has not reported for this long is itself an event (`silent`).
    # Music Square's detectors and covers report hourly: three missed reports.
    silent_after_seconds: int = Field(3 * 3600 + 600, ge=60)


def _music_square_products() -> list[CarrierProduct]:
    return [
        CarrierProduct(carrier="ctwing", product_id="15061937", decoder="ctwing-smoke-servicedata"),
        CarrierProduct(carrier="ctwing", product_id="15061938", decoder="ctwing-gas-frame"),
        CarrierProduct(carrier="onenet", product_id="427751", decoder="onenet-manhole-datapoints"),
    ]


class InboxSettings(BaseModel):
    """`neuron inbox`: where the carriers push, how pushes are verified, kept and processed."""

    enabled: bool = False  # `neuron up` runs the inbox only when true
    host: str = "127.0.0.1"
    port: int = Field(8704, ge=0, le=65535)  # 0: any free port (tests)
    # CTWing signs nothing (no signature on the push was found in the sources [unverified]), so its
    # URL carries a secret segment: /carrier/ctwing/<ctwing_path_secret>. Empty: no secret segment.
    ctwing_path_secret: SecretStr = SecretStr("")
    ctwing_tenants: list[str] = []  # tenantIds accepted (empty: any); others are refused with 403
    onenet_token: SecretStr = SecretStr("")  # the token configured with the OneNET push
    onenet_aes_key: SecretStr | None = None  # the 43-character EncodingAESKey of secure mode
    products: list[CarrierProduct] = Field(default_factory=_music_square_products)
    # The installer's list of carrier devices, imported by `neuron inbox devices FILE.csv` and
    # kept only encrypted here (it binds detectors to households).
    devices_file: Path = Path("inbox/devices.enc")  # under the state folder
    db_file: Path = Path("inbox/inbox.sqlite")  # under the state folder
    max_body_bytes: int = Field(256 * 1024, ge=1024)
    # "full": every group commit is fsynced before the carriers get their 200 (survives a power cut);
    # "normal": SQLite WAL without the fsync — survives a kill -9 of the inbox, not a power cut.
    sqlite_synchronous: Literal["full", "normal"] = "full"
    # Pushes are committed by this many writers, one SQLite file each (connectors/carrier/store.py).
    writers: int = Field(2, ge=1, le=8)
    process_interval_ms: int = Field(100, ge=10)  # how soon a pushed alarm is decoded and published
    land_interval_ms: int = Field(5_000, ge=100)  # readings are landed in batches this far apart
    dedupe_hours: int = Field(72, ge=1)  # how long a device's message key is remembered
    keep_processed_hours: int = Field(24, ge=1)  # raw pushes (encrypted) kept after processing
    gap_grace_seconds: int = Field(120, ge=1)  # a missing sequence number may still arrive (retries)
    sweep_seconds: int = Field(30, ge=1)  # how often silent devices and open gaps are looked for
    # CTWing's open API (AEP), to re-fetch what its cool-down or the inbox's own outage kept from
    # being pushed (connectors/carrier/ctwing_api.py). Empty URL: no re-fetch.
    ctwing_api_url: str = ""  # e.g. https://ag-api.ctwing.cn
    ctwing_app_key: str = ""
    ctwing_app_secret: SecretStr = SecretStr("")
    ctwing_master_key: SecretStr = SecretStr("")  # the product's MasterKey (one for the community's products)
    # A device the inbox has never heard from is re-fetched this far back at start.
    refetch_lookback_seconds: int = Field(6 * 3600, ge=60)
    # After the inbox starts, everything is re-fetched again this much later: an outage long enough
    # to trip CTWing's 1-minute cool-down leaves it running after the inbox is back.
    refetch_again_after_seconds: int = Field(75, ge=1)
    refetch_retry_seconds: int = Field(10, ge=1)  # a failed re-fetch is tried again this much later

    @field_validator("onenet_aes_key")
    @classmethod
    def _aes_key_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value() and len(value.get_secret_value()) != 43:
            raise ValueError("onenet_aes_key must be OneNET's 43-character EncodingAESKey")
        return value

    onenet_path: str = "/carrier/onenet"

    @property
    def ctwing_path(self) -> str:
        secret = self.ctwing_path_secret.get_secret_value()
        return "/carrier/ctwing" + (f"/{secret}" if secret else "")

    def product(self, carrier: str, product_id: str) -> CarrierProduct | None:
        for p in self.products:
            if p.carrier == carrier and p.product_id == product_id:
                return p
        return None
