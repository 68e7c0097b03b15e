"""The NGSI-LD push against the peer broker (simulator/ngsi_broker.py) over real loopback HTTP:
published feeds upserted in chunks at the broker's limit, 207 partial failures retried entity by
entity, history written once even when replies are lost, dead letters, auth, alarms from the
relay's outbox, and every round in the audit log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from kernel.push_settings import BearerAuth, NgsiLdPush, OAuth2Auth
from kernel.settings import Settings
from peers.ngsi_ld.alerts import kept_fields, push_alerts
from peers.ngsi_ld.auth import BrokerAuthError
from peers.ngsi_ld.batch import Pusher
from peers.ngsi_ld.client import BrokerClient
from peers.ngsi_ld.consumer import ConsumerPush
from peers.ngsi_ld.feeds import push_feeds
from peers.ngsi_ld.service import push_once
from peers.ngsi_ld.store import PushStore
from relay.alert_outbox import TOPIC, alert_state
from relay.lifecycle import Alarm, LifecycleEvent
from simulator.ngsi_broker import BrokerConfig, RunningBroker, start_broker
from tests.peers.ngsi_rig import AIR, ASSETS, air_rows, lamp_rows, publish, push_settings
from warehouse.audit import dump_detail, verify_chain
from warehouse.control import session_scope
from warehouse.models import AuditEntry, NgsiLdSentInstance, OutboxMessage
from warehouse.push_dead_letters import dead_letters

SDM_CONTEXT = "https://smartdatamodels.org/context.jsonld"


@pytest.fixture
def broker() -> Iterator[RunningBroker]:
    with start_broker(BrokerConfig(max_batch=100)) as running:
        yield running


def _consumer(settings: Settings) -> ConsumerPush:
    return ConsumerPush(settings, settings.push.ngsi_ld[0], sleep=lambda _: None)


def _audit(settings: Settings) -> list[AuditEntry]:
    with session_scope(settings.control_url) as session:
        assert verify_chain(session) == []
        return list(session.execute(select(AuditEntry).where(AuditEntry.action == "push")).scalars())


def test_published_feeds_reach_the_broker_in_chunks_at_its_limit(tmp_path: Path, broker: RunningBroker) -> None:
    settings = push_settings(tmp_path, broker.url, chunk_size=100, page_rows=1000)
    publish(settings, AIR, air_rows(stations=25, hours=5))  # 125 rows → 125 air + 125 noise entities
    publish(settings, ASSETS, lamp_rows(30))
    consumer = _consumer(settings)
    assert push_feeds(consumer) == 280
    stats = broker.stats()
    assert stats["entities"] == 280
    assert stats["batches"] == 3 + 1  # 250 in chunks of ≤ 100, then the 30 lamps
    assert stats.get("over_limit", 0) == 0
    # History: one temporal entity per station and model, per lamp; four air, two noise and
    # three lamp attributes per observation.
    assert stats["temporal_entities"] == 25 * 2 + 30
    assert stats["temporal_instances"] == 125 * 4 + 125 * 2 + 30 * 3
    assert stats.get("duplicate_instances", 0) == 0
    stored = broker.state.entities[("", "urn:ngsi-ld:AirQualityObserved:music-square:ENV0003:2026-11-20T02-00-00Z")]
    assert stored["pm10"] == 42.0 and "@context" not in stored
    # Caught up: nothing more is sent.
    assert push_feeds(consumer) == 0
    assert broker.stats()["batches"] == 4


def test_a_broker_limit_below_the_chunk_size_halves_the_chunks(tmp_path: Path, broker: RunningBroker) -> None:
    settings = push_settings(tmp_path, broker.url, chunk_size=300, history=False)
    publish(settings, AIR, air_rows(stations=50, hours=3))  # 300 entities
    assert push_feeds(_consumer(settings)) == 300
    stats = broker.stats()
    assert stats["entities"] == 300
    assert stats["over_limit"] == 3  # 300, then twice 150, refused; then chunks of 75
    assert stats["batches"] == 4


def test_partial_failures_retry_only_the_failed_entities_and_history_has_no_duplicates(tmp_path: Path) -> None:
    config = BrokerConfig(max_batch=1000, fail_fraction=0.10, temporal_lost_reply_every=5)
    with start_broker(config) as broker:
        settings = push_settings(tmp_path, broker.url, max_attempts=10)
        publish(settings, AIR, air_rows(stations=40, hours=20))  # 1,600 entities
        consumer = _consumer(settings)
        assert push_feeds(consumer) == 1600
        stats = broker.stats()
        attempts = broker.state.attempts
        assert len(attempts) == 1600 and stats["entities"] == 1600
        # Every entity was sent once, plus once more for each time the broker failed it: a
        # 207 made the hub resend those entities only, never a whole batch.
        assert stats["entity_errors"] > 100
        assert sum(attempts.values()) == 1600 + stats["entity_errors"]
        # Every fifth temporal write was stored and then answered 503; the ledger looked each
        # up before sending again: every instance once, none twice.
        assert stats["temporal_instances"] == 800 * 4 + 800 * 2
        assert stats["duplicate_instances"] == 0
        assert stats["temporal_writes"] >= 5  # so at least one reply was lost
        with session_scope(settings.control_url) as session:  # every instance in the ledger, confirmed
            ledger = session.execute(select(NgsiLdSentInstance.confirmed)).scalars().all()
        assert len(ledger) == 800 * 6 and all(ledger)
        # A replay from the beginning (a lost cursor) upserts again but writes no instance twice.
        PushStore(settings.control_url, "district").save_cursor(AIR, 0, 0)
        assert push_feeds(consumer) == 1600
        assert broker.stats()["temporal_instances"] == 800 * 6
        assert broker.duplicate_instances() == 0
        replayed = dump_detail(_audit(settings)[-1].detail)
        assert replayed is not None and replayed["temporal"]["skipped"] == 800 * 6  # known sent: not even looked up
        audited = _audit(settings)
        assert audited and all(e.actor == "district" and e.feed == AIR for e in audited)
        detail = dump_detail(audited[0].detail)
        assert detail is not None and detail["resent"] > 0 and detail["format"] == "ngsi-ld"
        assert detail["partitions"][0]["rows"] == 800
        assert detail["temporal"]["recovered"] > 0  # instances found at the broker after a lost reply


def test_refused_and_always_failing_entities_become_dead_letters(tmp_path: Path) -> None:
    with start_broker(BrokerConfig(fail_fraction=0.0)) as broker:
        settings = push_settings(tmp_path, broker.url, max_attempts=3)
        consumer = _consumer(settings)
        good = {"id": "urn:ngsi-ld:Streetlight:x:1", "type": "Streetlight", "status": "ok"}
        bad_name = {"id": "urn:ngsi-ld:Streetlight:x:2", "type": "Streetlight", "bad name": 1}
        v2 = {"id": "urn:ngsi-ld:Streetlight:x:3", "type": "Streetlight", "status": {"type": "Text", "value": "ok"}}
        outcome = consumer.pusher.upsert([{**e, "@context": [SDM_CONTEXT]} for e in (good, bad_name, v2)])
        assert outcome.succeeded == [good["id"]]
        assert [(d.error.kind, d.attempts) for d in outcome.dead] == [("BadRequestData", 1)] * 2
        assert outcome.requests == 1  # refused for their content: never retried
        broker.state.config.fail_fraction = 1.0  # the broker now fails every entity
        failing = consumer.pusher.upsert([{**good, "@context": [SDM_CONTEXT]}])
        assert [(d.error.kind, d.attempts) for d in failing.dead] == [("InternalError", 3)]
        consumer.store.add_dead(outcome.dead + failing.dead, "upsert", ASSETS)
    letters = dead_letters(settings.control_url, "district")
    assert {(d["entity_id"], d["error_type"], d["attempts"]) for d in letters} == {
        (bad_name["id"], "BadRequestData", 1),
        (v2["id"], "BadRequestData", 1),
        (good["id"], "InternalError", 3),
    }
    assert all("payload" not in d for d in letters)  # the console's list shows no content


def test_content_types_ld_json_and_json_with_a_link_header(tmp_path: Path, broker: RunningBroker) -> None:
    entity = {"id": "urn:ngsi-ld:Streetlight:x:9", "type": "Streetlight", "status": "ok", "@context": [SDM_CONTEXT]}
    as_ld = NgsiLdPush(name="district", broker_url=broker.url, tenant="putuo")
    as_json = NgsiLdPush(name="district", broker_url=broker.url, content_type="application/json", context=[SDM_CONTEXT])
    assert Pusher(BrokerClient(as_ld)).upsert([entity]).succeeded == [entity["id"]]
    assert Pusher(BrokerClient(as_json)).upsert([{**entity, "status": "defectiveLamp"}]).succeeded == [entity["id"]]
    assert broker.state.entities[("putuo", entity["id"])]["status"] == "ok"  # the tenant header
    assert broker.state.entities[("", entity["id"])]["status"] == "defectiveLamp"
    with pytest.raises(ValueError, match="exactly one context"):
        NgsiLdPush(name="district", broker_url=broker.url, content_type="application/json")


def test_bearer_and_oauth2_client_credentials(tmp_path: Path) -> None:
    entity = {"id": "urn:ngsi-ld:Streetlight:x:1", "type": "Streetlight", "status": "ok", "@context": SDM_CONTEXT}
    config = BrokerConfig(auth="bearer", bearer_token="s3cret-token")
    with start_broker(config) as broker:
        right = NgsiLdPush(name="d", broker_url=broker.url, auth=BearerAuth(token="s3cret-token"))
        assert Pusher(BrokerClient(right)).upsert([entity]).succeeded
        wrong = NgsiLdPush(name="d", broker_url=broker.url, auth=BearerAuth(token="guess"))
        with pytest.raises(BrokerAuthError, match="refused our credentials"):
            Pusher(BrokerClient(wrong)).upsert([entity])
        unset = NgsiLdPush(name="d", broker_url=broker.url, auth=BearerAuth(token_env="NEURON_TEST_UNSET_TOKEN"))
        with pytest.raises(BrokerAuthError, match="environment variable"):
            Pusher(BrokerClient(unset)).upsert([entity])
    config = BrokerConfig(auth="oauth2", client_id="hub", client_secret="client-secret")
    with start_broker(config) as broker:
        auth = OAuth2Auth(token_url=f"{broker.url}/oauth2/token", client_id="hub", client_secret="client-secret")
        client = BrokerClient(NgsiLdPush(name="d", broker_url=broker.url, auth=auth))
        assert Pusher(client).upsert([entity]).succeeded and Pusher(client).upsert([entity]).succeeded
        assert client.credentials.issued == 1  # the token is kept while valid
        broker.state.tokens.clear()  # the broker revokes it: a 401, a new token, the write goes through
        assert Pusher(client).upsert([entity]).succeeded
        assert client.credentials.issued == 2
        bad = auth.model_copy(update={"client_secret": SecretStr("wrong")})
        with pytest.raises(BrokerAuthError, match="client credentials"):
            Pusher(BrokerClient(NgsiLdPush(name="d", broker_url=broker.url, auth=bad))).upsert([entity])


def _alarm(alarm_id: str, state: str, acked: datetime | None = None) -> LifecycleEvent:
    raised = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    alarm = Alarm(
        alarm_id=alarm_id,
        community_id="music-square",
        family="home-safety",
        category="smoke",
        device_id="tok-device",
        severity="critical",
        state=state,
        building="12",
        unit="2",
        room_no="enc:1:sealed-room",
        detected_at=raised,
        raised_at=raised,
        last_event_time=raised,
        acknowledged_at=acked,
        acknowledged_by="district" if acked else None,
    )
    return LifecycleEvent(f"{alarm_id}-{state}", alarm, state, raised, "device", raised)


def test_alarms_from_the_relay_outbox_become_alerts_at_the_level_the_policy_grants(
    tmp_path: Path, broker: RunningBroker
) -> None:
    settings = push_settings(tmp_path, broker.url)
    outbox = settings.push.ngsi_ld[0].alert_outbox
    acked = datetime(2026, 11, 20, 2, 1, 30, tzinfo=UTC)
    events = [_alarm("ALM1", "raised"), _alarm("ALM2", "raised"), _alarm("ALM1", "acknowledged", acked)]
    with session_scope(settings.control_url) as session:  # what the relay's group commit writes
        for event in events:
            session.add(
                OutboxMessage(
                    destination=outbox,
                    topic=TOPIC,
                    payload=alert_state(event),
                    alarm_id=event.alarm.alarm_id,
                    created_at=datetime.now(UTC),
                )
            )
    consumer = _consumer(settings)
    assert push_alerts(consumer, kept_fields(consumer)) == 3
    first = broker.state.entities[("", "urn:ngsi-ld:Alert:music-square:ALM1")]
    assert first["type"] == "Alert" and first["category"] == "security" and first["subCategory"] == "buildingFire"
    assert first["data"]["state"] == "acknowledged" and first["data"]["responseSeconds"] == 90  # the latest state
    assert first["data"]["building"] == "12"
    assert "unit" not in first["data"] and "roomNo" not in first["data"]  # building level, as the policy grants
    assert broker.stats()["batches"] == 1 and broker.stats()["entities"] == 2
    assert consumer.store.alerts(outbox, 10) == []  # settled
    assert json.loads(json.dumps(first)) == first
    (entry,) = _audit(settings)
    assert entry.rows == 2 and entry.feed == "safety.alarms"
    assert entry.policy_fingerprint == consumer.policy.fingerprint


def test_push_once_runs_every_configured_consumer(tmp_path: Path, broker: RunningBroker) -> None:
    settings = push_settings(tmp_path, broker.url)
    publish(settings, ASSETS, lamp_rows(5))
    stats = push_once(settings)
    assert (stats.feed_entities, stats.alert_rows, stats.failures) == (5, 0, 0)
    later = lamp_rows(5)
    for row in later:
        row["last_report_at"] += timedelta(days=1)
        row["state"] = "off"
    publish(settings, ASSETS, later, version=2)  # the day re-published: version 2
    assert push_once(settings).feed_entities == 5
    lamp = broker.state.entities[("", "urn:ngsi-ld:Streetlight:music-square:SL0001")]
    assert lamp["powerState"] == "off"
    assert broker.stats()["temporal_instances"] == 2 * 5 * 3
    assert broker.duplicate_instances() == 0


def test_neuron_up_runs_the_push_only_when_a_broker_is_configured(tmp_path: Path) -> None:
    from kernel.push_settings import PushSettings
    from kernel.settings import load_settings
    from neuron.up import AirflowPorts, hub_services

    ports = AirflowPorts(api=18080, scheduler_health=18974, log_server=18793)
    plain = load_settings(home=tmp_path, push=PushSettings())
    assert "push" not in [s.name for s in hub_services(plain, ports)]
    target = NgsiLdPush(name="district", broker_url="http://127.0.0.1:9")
    pushing = load_settings(home=tmp_path, push=PushSettings(ngsi_ld=[target]))
    (push,) = [s for s in hub_services(pushing, ports) if s.name == "push"]
    assert push.argv[-1] == "push"


def test_neuron_push_once_from_the_hub_toml(
    tmp_path: Path, broker: RunningBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from kernel.push_settings import BearerAuth
    from kernel.settings import load_settings
    from neuron.cli import app

    settings = push_settings(tmp_path, broker.url)  # keys, control DB, policy
    publish(settings, ASSETS, lamp_rows(3))
    broker.state.config.auth, broker.state.config.bearer_token = "bearer", "from-the-environment"
    toml = tmp_path / "hub.toml"
    toml.write_text(
        f'policies_dir = "{settings.policies_dir}"\n\n'
        "[[push.ngsi_ld]]\n"
        'name = "district"\n'
        f'broker_url = "{broker.url}"\n'
        'tenant = "putuo"\n'
        'auth = { kind = "bearer", token_env = "NEURON_TEST_CITYBRAIN_TOKEN" }\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("NEURON_CONFIG", str(toml))
    monkeypatch.setenv("NEURON_HOME", str(tmp_path))
    monkeypatch.setenv("NEURON_TEST_CITYBRAIN_TOKEN", "from-the-environment")
    (target,) = load_settings().push.ngsi_ld
    assert isinstance(target.auth, BearerAuth) and target.tenant == "putuo" and target.chunk_size == 1000
    result = CliRunner().invoke(app, ["push", "--once"])
    assert result.exit_code == 0, result.output
    assert "push: 3 feed entities" in result.output
    assert len([k for k in broker.state.entities if k[0] == "putuo"]) == 3
    listed = CliRunner().invoke(app, ["push", "dead-letters"])
    assert listed.exit_code == 0 and "urn:ngsi-ld" not in listed.output
