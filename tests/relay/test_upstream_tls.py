"""MQTT upstreams verify TLS by default (issue 17): certificate and host name."""

from __future__ import annotations

import ssl

from kernel.relay_settings import RelaySettings, Upstream
from relay.destinations import upstream_client


def test_an_upstream_verifies_tls_unless_told_otherwise() -> None:
    assert all(up.tls for up in RelaySettings().upstreams)
    client = upstream_client(Upstream(name="district", host="broker.example"), "music-square", 60)
    context = client._ssl_context  # paho keeps the context tls_set built
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
