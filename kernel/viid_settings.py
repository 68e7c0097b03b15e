"""`[viid]`: the cascade to public security's VIID platform (GA/T 1400.4), run by `neuron viid`.

The hub is the lower platform (下级平台): it registers with the upper platform, keeps alive,
serves the upper's subscriptions and pushes vehicle passes to it. Unset `upper_url` = not
configured (`neuron up` does not start it). The Digest password never goes in the file:
NEURON_VIID__PASSWORD.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class GateSettings(BaseModel):
    """One vehicle gate of the community, listed upstream as a tollgate (卡口) with its two cameras."""

    code: str  # the parking vendor's gate_code (G1, G2, ...)
    name: str
    longitude: float = Field(ge=-180, le=180)
    latitude: float = Field(ge=-90, le=90)


def _music_square_gates() -> list[GateSettings]:
    # Music Square's two gates (simulator/parking.py GATES), on Changshou Road, Putuo.
    return [
        GateSettings(code="G1", name="北门", longitude=121.4393, latitude=31.2447),
        GateSettings(code="G2", name="南门", longitude=121.4391, latitude=31.2421),
    ]


class ViidSettings(BaseModel):
    """The lower-platform side of a GA/T 1400 cascade."""

    upper_url: str = ""  # the upper platform's base URL, e.g. http://viid.example:8080
    # Our 20-digit platform id as the upper assigned it (type 503 = 视图库); the Digest username too
    # unless `username` says otherwise.
    device_id: str = Field("31010700005030000001", pattern=r"^[0-9]{20}$")
    upper_id: str = Field("", pattern=r"^([0-9]{20})?$")  # the upper's id: its requests must carry it
    username: str = ""
    password: SecretStr = SecretStr("")
    # Where the upper reaches us for /VIID/Subscribes, /VIID/APEs, /VIID/Tollgates.
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(8703, ge=0, le=65535)
    # Hosts the upper may name as a subscription's ReceiveAddr besides its own (upper_url's): the hub
    # POSTs passes there, so an address the upper merely asserts must not point anywhere else.
    receive_hosts: list[str] = []
    consumer: str = "public_security"  # whose sharing policy decides what is pushed
    keepalive_seconds: float = Field(30.0, gt=0)
    poll_seconds: float = Field(0.5, gt=0)  # how often the parking vendor is read for this channel
    # Each poll re-reads this much of the previous window: records the vendor committed late
    # (already pushed ones are recognised and skipped).
    poll_overlap_seconds: float = Field(10.0, ge=0)
    # Notifications per request. 1 = stop-and-wait, the rule vendor documents give; more carries
    # several SubscribeNotificationObjects in one list, each acknowledged by its own status.
    window: int = Field(1, ge=1, le=32)
    # MotorVehicleObjects per notification. InfoIDs (A.20) lists their 48-digit ids, comma-separated,
    # in at most 1024 characters: 20 ids fit (20 × 48 + 19 = 979), 21 would not (1,028).
    max_objects: int = Field(20, ge=1, le=20)
    timeout_seconds: float = Field(5.0, gt=0)
    retry_min_seconds: float = Field(0.2, gt=0)
    retry_max_seconds: float = Field(10.0, gt=0)
    max_clock_skew_seconds: float = Field(5.0, gt=0)  # warn when /VIID/System/Time differs more
    # Passes already queued are remembered this long (to skip re-reads), and notifications the
    # upper refused (kept for the operator) are deleted after as long.
    seen_retention_days: int = Field(7, ge=1)
    # Each active subscription gets its own copy of every pass: an upper cannot open more than this.
    max_subscriptions: int = Field(8, ge=1, le=100)
    gates: list[GateSettings] = Field(default_factory=_music_square_gates)
    place_code: str = Field("310107", pattern=r"^[0-9]{6}$")  # administrative division (Putuo)

    @property
    def configured(self) -> bool:
        return bool(self.upper_url)

    @property
    def login(self) -> str:
        return self.username or self.device_id
