"""The parking vendor's HTTP API on loopback: token auth, paging by updated time, injected faults."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from datetime import datetime, timedelta
from typing import cast
from urllib.parse import parse_qs, urlsplit

from simulator.http_server import JsonHandler, RunningServer, VendorServer, VendorState, serve_in_thread
from simulator.parking import CST, ParkingSimulator
from simulator.parking_charges import charges_updated_between

PASSES_PATH = "/api/v2/vehicle-passes"
CHARGES_PATH = "/api/v2/parking-charges"
DEFAULT_PAGE_SIZE = 200
MAX_PAGE_SIZE = 500
MAX_WINDOW = timedelta(days=31)


class BadRequest(Exception):
    """A request the vendor answers with 400."""


class _State(VendorState):
    def __init__(self, sim: ParkingSimulator, token: str) -> None:
        super().__init__()
        self.sim = sim
        self.token = token.encode()
        # Tokens survive a restart of the same simulator, as the vendor's do, but cannot be forged.
        self.key = hashlib.sha256(f"{sim.seed}:{sim.community_id}:{token}".encode()).digest()

    def sign(self, body: bytes) -> str:
        return _b64(hmac.new(self.key, body, hashlib.sha256).digest()[:16])


class _Handler(JsonHandler):
    server_version = "ParkVendor/2.3"

    def do_GET(self) -> None:
        """Route GET requests."""
        try:
            url = urlsplit(self.path)
            if url.path == "/healthz":
                self._send(200, {"status": "ok"})
            elif url.path in (PASSES_PATH, CHARGES_PATH):
                self._passes(url.query, url.path)
            else:
                self._send(404, {"error": "not found"})
        except BadRequest as exc:
            self._send(400, {"error": str(exc)})
        except Exception:
            self._send(500, {"error": "internal error"})

    def _passes(self, query: str, path: str = PASSES_PATH) -> None:
        state = cast(_State, cast(VendorServer, self.server).state)
        if not self._authorized(state):
            self._send(401, {"error": "unauthorized"})
            return
        with state.lock:
            state.count += 1
            n = state.count
        faults = state.sim.faults
        if faults.slow_every and n % faults.slow_every == 0:
            with state.lock:
                state.slowed += 1
            time.sleep(faults.slow_seconds)
        if faults.error_every and n % faults.error_every == 0:
            self._send(503, {"error": "upstream busy"})
            return
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        size = _page_size(params.get("page_size"))
        since, until, offset = self._window(state, params)
        if path == CHARGES_PATH:
            rows = charges_updated_between(state.sim, since, until)
        else:
            rows = state.sim.records_updated_between(since, until)
        end = offset + size
        token = _encode_token(state, end, since, until) if end < len(rows) else None
        self._send(200, {"data": rows[offset:end], "next_page_token": token, "total": len(rows)})

    def _authorized(self, state: _State) -> bool:
        scheme, _, given = (self.headers.get("Authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), state.token)

    def _window(self, state: _State, params: dict[str, str]) -> tuple[datetime, datetime, int]:
        raw_since, raw_until = params.get("updated_since"), params.get("updated_until")
        if params.get("page_token"):
            offset, since, until = _decode_token(state, params["page_token"])
            if (raw_since and _parse_ts(raw_since, "updated_since") != since) or (
                raw_until and _parse_ts(raw_until, "updated_until") != until
            ):
                raise BadRequest("page_token does not belong to this updated_since/updated_until")
            return since, until, offset
        if not raw_since:
            raise BadRequest("updated_since is required")
        since = _parse_ts(raw_since, "updated_since")
        # Without updated_until the window ends now, fixed into the page tokens so paging stays stable.
        until = _parse_ts(raw_until, "updated_until") if raw_until else datetime.now(CST).replace(microsecond=0)
        if until < since:
            raise BadRequest("updated_until is before updated_since")
        if until - since > MAX_WINDOW:
            raise BadRequest(f"window longer than {MAX_WINDOW.days} days")
        return since, until, 0


def _page_size(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_PAGE_SIZE
    try:
        size = int(raw)
    except ValueError:
        raise BadRequest("page_size must be an integer") from None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise BadRequest(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
    return size


def _parse_ts(raw: str, name: str) -> datetime:
    try:
        ts = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} is not an ISO 8601 timestamp") from None
    if ts.tzinfo is None:
        raise BadRequest(f"{name} must carry a UTC offset")
    return ts


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _encode_token(state: _State, offset: int, since: datetime, until: datetime) -> str:
    body = json.dumps({"o": offset, "s": since.isoformat(), "u": until.isoformat()}, separators=(",", ":"))
    return _b64(body.encode()) + "." + state.sign(body.encode())


def _decode_token(state: _State, token: str) -> tuple[int, datetime, datetime]:
    try:
        head, _, mac = token.partition(".")
        body = _unb64(head)
        if not hmac.compare_digest(mac, state.sign(body)):
            raise ValueError("bad signature")
        fields = json.loads(body)
        offset = int(fields["o"])
        if offset < 0:
            raise ValueError("negative offset")
        return offset, datetime.fromisoformat(fields["s"]), datetime.fromisoformat(fields["u"])
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("invalid page_token") from None


def start_parking_api(sim: ParkingSimulator, token: str, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve `sim` over HTTP on host:port (0 picks a free port) in a daemon thread."""
    return serve_in_thread(_Handler, _State(sim, token), "parking-api", host, port)
