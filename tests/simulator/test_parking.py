"""The parking vendor simulator: data model, faults and the HTTP API over real loopback sockets."""

from __future__ import annotations

import base64
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from random import Random
from typing import Any

import pytest
import requests

from simulator import plates
from simulator.parking import CST, Faults, ParkingSimulator, parking_fee_fen
from simulator.server import RunningServer, start_parking_api
from simulator.truth import read_truth, write_truth

PLATE = re.compile(r"^[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-HJ-NP-Z][A-HJ-NP-Z0-9]{5,6}$")
TOKEN = "s3cret-vendor-token"
DAY = date(2026, 11, 20)
PATH = "/api/v2/vehicle-passes"


def at(hh: int, mm: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=CST)


def window(since: datetime, until: datetime, **extra: Any) -> dict[str, Any]:
    return {"updated_since": since.isoformat(), "updated_until": until.isoformat(), **extra}


def fetch_all(url: str, params: dict[str, Any], retries: int = 3) -> list[dict[str, Any]]:
    """Page through the API the way a connector must: follow tokens, retry 503 on the same request."""
    out: list[dict[str, Any]] = []
    with requests.Session() as s:
        s.headers["Authorization"] = f"Bearer {TOKEN}"
        query = dict(params)
        while True:
            for _ in range(retries):
                resp = s.get(url + PATH, params=query, timeout=5)
                if resp.status_code != 503:
                    break
            resp.raise_for_status()
            body = resp.json()
            out.extend(body["data"])
            if body["next_page_token"] is None:
                return out
            query = {**params, "page_token": body["next_page_token"]}


@pytest.fixture(scope="module")
def clean() -> ParkingSimulator:
    return ParkingSimulator(seed=7, faults=Faults.none())


@pytest.fixture(scope="module")
def faulty() -> ParkingSimulator:
    return ParkingSimulator(seed=7)


@pytest.fixture()
def api(faulty: ParkingSimulator) -> Iterator[RunningServer]:
    with start_parking_api(faulty, TOKEN) as server:
        yield server


# --- data model ---------------------------------------------------------------------------------


def test_same_seed_same_records_and_days_are_independent() -> None:
    a, b = ParkingSimulator(seed=11), ParkingSimulator(seed=11)
    b.passes_for_day(DAY - timedelta(days=1))  # generating an earlier day first must change nothing
    assert a.passes_for_day(DAY) == b.passes_for_day(DAY)
    assert a.fault_log == {k: v for k, v in b.fault_log.items() if k.startswith("MSQ-20261120")}
    assert ParkingSimulator(seed=12).passes_for_day(DAY) != a.passes_for_day(DAY)


def test_fault_rates_do_not_change_the_underlying_passes(clean: ParkingSimulator) -> None:
    noisy = ParkingSimulator(seed=7, faults=replace(Faults.none(), malformed_rate=0.3))
    pairs = list(zip(clean.passes_for_day(DAY), noisy.passes_for_day(DAY), strict=True))
    assert all({**a, "plate_no": ""} == {**b, "plate_no": ""} for a, b in pairs)
    assert 0.25 < sum(a["plate_no"] != b["plate_no"] for a, b in pairs) / len(pairs) < 0.35


def test_volume_mix_and_daily_curve(clean: ParkingSimulator) -> None:
    assert 0.55 * 706 < len(clean.residents) < 0.75 * 706
    for n in range(7):
        recs = clean.passes_for_day(DAY + timedelta(days=n))
        assert 1275 <= len(recs) <= 1725
        share = sum(r["vehicle_type"] == "visitor" for r in recs) / len(recs)
        assert 0.30 < share < 0.40
        hours = Counter(datetime.fromisoformat(r["pass_time"]).hour for r in recs)
        peaks = sum(hours[h] for h in (7, 8, 17, 18, 19))
        night = sum(hours[h] for h in range(6))
        assert peaks > 10 * night > 0
        assert {r["gate_code"] for r in recs} == {"G1", "G2"}


def test_passes_pair_up_per_vehicle(clean: ParkingSimulator) -> None:
    by_plate: dict[str, list[dict[str, Any]]] = {}
    for r in clean.passes_for_day(DAY):
        by_plate.setdefault(r["plate_no"], []).append(r)
    for recs in by_plate.values():
        dirs = [r["direction"] for r in sorted(recs, key=lambda r: r["pass_time"])]
        assert all(x != y for x, y in pairwise(dirs))
        if recs[0]["vehicle_type"] == "resident":
            assert dirs[0] == "out" and dirs[-1] == "in"
    overnight = [
        p for p, recs in by_plate.items() if recs[-1]["direction"] == "in" and recs[0]["vehicle_type"] == "visitor"
    ]
    assert overnight, "some visitors stay the night"
    tomorrow = {r["plate_no"]: r for r in clean.passes_for_day(DAY + timedelta(days=1)) if r["direction"] == "out"}
    assert all(p in tomorrow for p in overnight)


def test_record_shape_and_fees(clean: ParkingSimulator) -> None:
    keys = {
        "record_id",
        "park_code",
        "community_id",
        "gate_code",
        "gate_name",
        "direction",
        "plate_no",
        "plate_color",
        "vehicle_type",
        "pass_time",
        "updated_at",
        "fee_fen",
    }
    recs = clean.passes_for_day(DAY)
    assert recs[0]["record_id"] == "MSQ-20261120-000001"
    for r in recs:
        assert set(r) == keys and r["park_code"] == "MSQ" and r["community_id"] == "music-square"
        assert r["gate_name"] == {"G1": "北门", "G2": "南门"}[r["gate_code"]]
        lag = datetime.fromisoformat(r["updated_at"]) - datetime.fromisoformat(r["pass_time"])
        assert timedelta(seconds=1) <= lag <= timedelta(seconds=5)
        paid = r["vehicle_type"] == "visitor" and r["direction"] == "out"
        assert isinstance(r["fee_fen"], int) if paid else r["fee_fen"] is None
    assert parking_fee_fen(at(8), at(8, 30)) == 0
    assert parking_fee_fen(at(8), at(8, 31)) == 1000
    assert parking_fee_fen(at(8), at(10, 31)) == 3000
    assert parking_fee_fen(at(8), at(23)) == 6000


def test_well_formed_plates(clean: ParkingSimulator) -> None:
    recs = clean.passes_for_day(DAY)
    assert all(PLATE.match(r["plate_no"]) for r in recs)
    assert all((len(r["plate_no"]) == 8) == (r["plate_color"] == "green") for r in recs)
    assert {r["plate_color"] for r in recs} >= {"blue", "green"}
    assert sum(v.plate[0] == "沪" for v in clean.residents) / len(clean.residents) >= 0.7
    assert 0.12 < sum(v.color == "green" for v in clean.residents) / len(clean.residents) < 0.28
    assert len({v.plate[0] for v in clean.visitor_pool}) >= 15
    rng = Random(3)
    for _ in range(300):
        green = plates.new_energy_plate(rng)
        assert PLATE.match(green) and (green[2] in "DF" or green[-1] in "DF")
        assert PLATE.match(plates.ordinary_plate(rng))


def test_malformed_plates_never_match() -> None:
    rng = Random(5)
    for kind in plates.MALFORMED_KINDS:
        for _ in range(200):
            assert not PLATE.match(plates.malformed_plate(rng, kind=kind))
    assert plates.malformed_plate(rng, "沪A12345", "dash") == "沪A-12345"
    assert plates.malformed_plate(rng, kind="empty") == ""
    assert re.fullmatch(r"[A-Z]{3}[0-9]{3}", plates.malformed_plate(rng, kind="latin_only"))


def test_faults_are_logged_and_present(faulty: ParkingSimulator) -> None:
    recs = {r["record_id"]: r for d in range(3) for r in faulty.passes_for_day(DAY + timedelta(days=d))}
    log = faulty.fault_log
    assert set(log.values()) == {"malformed_plate", "duplicate", "late", "bad_pass_time", "bad_direction"}
    assert 0.005 < sum(k == "malformed_plate" for k in log.values()) / len(recs) < 0.02
    for rid, r in recs.items():
        kind = log.get(rid)
        assert (PLATE.match(r["plate_no"]) is None) == (kind == "malformed_plate")
        assert (r["direction"] not in ("in", "out")) == (kind == "bad_direction")
        if kind == "bad_pass_time":
            with pytest.raises(ValueError):
                datetime.fromisoformat(r["pass_time"])
        if kind == "late":
            lag = datetime.fromisoformat(r["updated_at"]) - datetime.fromisoformat(r["pass_time"])
            assert timedelta(hours=1) <= lag <= timedelta(hours=6)


def test_updated_window_is_half_open_ordered_and_serves_duplicates(faulty: ParkingSimulator) -> None:
    with pytest.raises(ValueError):
        faulty.records_updated_between(datetime(2026, 11, 20), at(9))
    day = faulty.records_updated_between(at(0), at(0, day=DAY + timedelta(days=1)))
    keys = [(datetime.fromisoformat(r["updated_at"]), r["record_id"]) for r in day]
    assert keys == sorted(keys)
    counts = Counter(r["record_id"] for r in day)
    dups = {rid for rid, k in faulty.fault_log.items() if k == "duplicate"}
    assert {rid for rid, n in counts.items() if n == 2} == dups & set(counts) != set()
    assert max(counts.values()) == 2
    # Late records from the previous evening arrive today; pass_time order is therefore broken.
    assert any(r["record_id"].startswith("MSQ-20261119") for r in day)
    times = [r["pass_time"] for r in day if faulty.fault_log.get(r["record_id"]) != "bad_pass_time"]
    assert times != sorted(times)
    t = datetime.fromisoformat(day[500]["updated_at"])
    inside = faulty.records_updated_between(t, t + timedelta(seconds=1))
    assert inside and all(datetime.fromisoformat(r["updated_at"]) == t for r in inside)
    before = faulty.records_updated_between(t - timedelta(hours=1), t)
    assert before and all(datetime.fromisoformat(r["updated_at"]) < t for r in before)
    assert faulty.records_updated_between(t, t) == []


def test_truth_file_covers_every_plate(faulty: ParkingSimulator, tmp_path: Path) -> None:
    served = faulty.records_updated_between(at(0), at(12))
    path = tmp_path / "truth" / "parking.json"
    write_truth(faulty, path)
    truth = read_truth(path)
    assert truth["fault_log"] == faulty.fault_log
    assert "" not in truth["plates"]
    assert {r["plate_no"] for r in served} - {""} <= set(truth["plates"])


# --- HTTP API -----------------------------------------------------------------------------------


def test_paging_returns_every_record_once_plus_duplicates(api: RunningServer, faulty: ParkingSimulator) -> None:
    since, until = at(0), at(0, day=DAY + timedelta(days=1))
    got = fetch_all(api.url, window(since, until, page_size=137))
    assert got == faulty.records_updated_between(since, until)
    expected = {
        r["record_id"]
        for d in (DAY - timedelta(days=1), DAY)
        for r in faulty.passes_for_day(d)
        if since <= datetime.fromisoformat(r["updated_at"]) < until
    }
    counts = Counter(r["record_id"] for r in got)
    assert set(counts) == expected
    assert {rid for rid, n in counts.items() if n > 1} == {
        rid for rid in expected if faulty.fault_log.get(rid) == "duplicate"
    }
    assert api.request_count == -(-len(got) // 137)


def test_auth_and_health(api: RunningServer) -> None:
    params = window(at(8), at(9))
    assert requests.get(api.url + "/healthz", timeout=5).status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        resp = requests.get(api.url + PATH, params=params, headers=headers, timeout=5)
        assert resp.status_code == 401 and resp.json() == {"error": "unauthorized"}
    assert api.request_count == 0


@pytest.mark.parametrize(
    "params",
    [
        {"updated_since": "2026-11-20 25:61:00", "updated_until": "2026-11-20T09:00:00+08:00"},
        {"updated_since": "2026-11-20T08:00:00", "updated_until": "2026-11-20T09:00:00+08:00"},
        {"updated_until": "2026-11-20T09:00:00+08:00"},
        {**window(at(9), at(8))},
        {**window(at(8), at(9)), "page_size": "0"},
        {**window(at(8), at(9)), "page_size": "501"},
        {**window(at(8), at(9)), "page_size": "ten"},
        {**window(at(8), at(9)), "page_token": "not-a-token"},
    ],
)
def test_bad_requests_get_400(api: RunningServer, params: dict[str, str]) -> None:
    resp = requests.get(api.url + PATH, params=params, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert resp.status_code == 400 and "error" in resp.json()


def test_tampered_or_foreign_page_token_rejected(api: RunningServer) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    params = window(at(8), at(12), page_size=10)
    token = requests.get(api.url + PATH, params=params, headers=auth, timeout=5).json()["next_page_token"]
    head, _, mac = token.partition(".")
    body = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**body, "o": 0}).encode()).decode().rstrip("=") + "." + mac
    for bad in (forged, token[:-2], token + "x"):
        resp = requests.get(api.url + PATH, params={**params, "page_token": bad}, headers=auth, timeout=5)
        assert resp.status_code == 400
    other = window(at(9), at(12), page_token=token)
    assert requests.get(api.url + PATH, params=other, headers=auth, timeout=5).status_code == 400
    ok = requests.get(api.url + PATH, params={**params, "page_token": token}, headers=auth, timeout=5)
    assert ok.status_code == 200 and len(ok.json()["data"]) == 10


def test_every_nth_request_is_503_and_retry_succeeds(faulty: ParkingSimulator) -> None:
    sim = ParkingSimulator(seed=7, passes_per_day=300, faults=Faults(error_every=3))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with start_parking_api(sim, TOKEN) as server:
        codes = [
            requests.get(server.url + PATH, params=window(at(8), at(9)), headers=auth, timeout=5).status_code
            for _ in range(6)
        ]
        assert codes == [200, 200, 503, 200, 200, 503]
        busy = requests.get(server.url + PATH, params=window(at(8), at(9)), headers=auth, timeout=5)
        assert busy.status_code == 200
        got = fetch_all(server.url, window(at(6), at(20), page_size=100))
    assert got == sim.records_updated_between(at(6), at(20))


def test_every_mth_request_is_slow() -> None:
    sim = ParkingSimulator(seed=7, passes_per_day=300, faults=Faults(slow_every=2, slow_seconds=0.3))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with start_parking_api(sim, TOKEN) as server:
        durations, slowed = [], []
        for _ in range(2):
            start = time.perf_counter()
            resp = requests.get(server.url + PATH, params=window(at(8), at(9)), headers=auth, timeout=5)
            durations.append(time.perf_counter() - start)
            slowed.append(server.slowed_count)
            assert resp.status_code == 200
    # Which requests the fault held back, from the server's own count (no wall-clock threshold for
    # the fast one: a loaded machine may take any time); the slow one took at least its delay.
    assert slowed == [0, 1]
    assert durations[1] >= 0.3


def test_server_never_prints_plates_and_stops_cleanly(
    faulty: ParkingSimulator, capfd: pytest.CaptureFixture[str]
) -> None:
    with start_parking_api(faulty, TOKEN) as server:
        fetch_all(server.url, window(at(7), at(10), page_size=500))
        requests.get(server.url + PATH, params=window(at(7), at(10)), timeout=5)
        requests.get(server.url + "/nowhere", timeout=5)
        url = server.url
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/healthz", timeout=1)
