"""Dead letters sent again (issue 20): `neuron push resend` at once, or the console's button,
which marks them for the push's next round; every re-send is audited as a push with who asked,
a letter the broker takes is resolved, one it refuses again stays open."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from kernel.settings import Settings
from peers.ngsi_ld.consumer import ConsumerPush
from peers.ngsi_ld.feeds import push_feeds
from peers.ngsi_ld.service import push_once
from simulator.ngsi_broker import BrokerConfig, start_broker
from tests.peers.ngsi_rig import ASSETS, lamp_rows, publish, push_settings
from warehouse.audit import dump_detail, verify_chain
from warehouse.control import session_scope
from warehouse.models import AuditEntry, NgsiLdDeadLetter
from warehouse.push_dead_letters import dead_letters, request_resend


def _consumer(settings: Settings) -> ConsumerPush:
    return ConsumerPush(settings, settings.push.ngsi_ld[0], sleep=lambda _: None)


def _resends(control_url: str) -> list[AuditEntry]:
    with session_scope(control_url) as session:
        assert verify_chain(session) == []
        pushes = session.scalars(select(AuditEntry).where(AuditEntry.action == "push")).all()
        return [e for e in pushes if "resend" in (dump_detail(e.detail) or {})]


def test_neuron_push_resend_sends_the_dead_letters_again_and_audits_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from neuron.cli import app

    with start_broker(BrokerConfig(fail_fraction=1.0)) as broker:  # down for every entity
        settings = push_settings(tmp_path, broker.url, max_attempts=2)
        publish(settings, ASSETS, lamp_rows(3))
        push_feeds(_consumer(settings))
        assert len(dead_letters(settings.control_url, "district")) == 3
        assert not broker.state.entities

        broker.state.config.fail_fraction = 0.0  # mended
        toml = tmp_path / "hub.toml"
        toml.write_text(
            f'policies_dir = "{settings.policies_dir}"\n\n[[push.ngsi_ld]]\nname = "district"\n'
            f'broker_url = "{broker.url}"\nmax_attempts = 2\n',
            encoding="utf-8",
        )
        monkeypatch.setenv("NEURON_CONFIG", str(toml))
        monkeypatch.setenv("NEURON_HOME", str(tmp_path))
        result = CliRunner().invoke(app, ["push", "resend"])
        assert result.exit_code == 0, result.output
        assert "3 dead letters re-sent, 3 taken, 0 refused again" in result.output
        assert len(broker.state.entities) == 3
    assert dead_letters(settings.control_url, "district") == []  # resolved
    (entry,) = _resends(settings.control_url)
    detail = dump_detail(entry.detail) or {}
    assert entry.actor == "district" and entry.outcome == "ok" and entry.rows == 3
    assert detail["resend"] == {"requested_by": "cli", "dead_letters": 3} and detail["body_digests"]
    assert "urn:ngsi-ld" not in result.output  # counts only


def test_the_consoles_request_is_sent_by_the_next_push_round_and_a_refusal_stays_open(tmp_path: Path) -> None:
    with start_broker(BrokerConfig(fail_fraction=1.0)) as broker:
        settings = push_settings(tmp_path, broker.url, max_attempts=2)
        consumer = _consumer(settings)
        publish(settings, ASSETS, lamp_rows(2))
        push_feeds(consumer)
        refused = {"id": "urn:ngsi-ld:Streetlight:x:9", "type": "Streetlight", "bad name": 1}
        consumer.store.add_dead(consumer.pusher.upsert([refused]).dead, "upsert", ASSETS)  # refused for content
        assert len(dead_letters(settings.control_url, "district")) == 3

        broker.state.config.fail_fraction = 0.0
        push_once(settings)  # nothing asked for yet: the letters stay as they are
        assert len(dead_letters(settings.control_url, "district")) == 3 and not _resends(settings.control_url)

        assert request_resend(settings.control_url) == 3  # the console's button (routes.py audits who)
        assert request_resend(settings.control_url) == 0  # already asked
        push_once(settings)
        assert len(broker.state.entities) == 2
    (still,) = dead_letters(settings.control_url, "district")
    assert still["entity_id"] == refused["id"] and still["attempts"] == 2 and still["resend_requested_at"] is None
    (entry,) = _resends(settings.control_url)
    assert entry.outcome == "partial" and (dump_detail(entry.detail) or {})["resend"]["requested_by"] == "console"
    with session_scope(settings.control_url) as session:
        resolved = session.scalars(select(NgsiLdDeadLetter).where(NgsiLdDeadLetter.resolved_at.is_not(None))).all()
        assert len(resolved) == 2
