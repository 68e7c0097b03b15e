"""Generates clients/testvectors/vectors.json from the hub's own code, from fixed keys and times:
a signed request, a signed response bound to it, a manifest JWS and an HPKE-sealed value.

    PYTHONPATH=. python clients/testvectors/generate.py            # rewrite vectors.json
    PYTHONPATH=. python clients/testvectors/generate.py --check    # exit 1 if it would change

Every key here is a published test key: never use one for anything else.
clients/testvectors/check.mjs verifies the file with Node's built-in crypto alone.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from api.asgi import FieldLines, body_digest
from api.response_signing import sign_response
from api.signing import sign_request
from privacy.hpke import ikm_for
from privacy.jws import canonical_json, sign_json
from privacy.keys import SigningKey, b64u, b64u_decode
from privacy.seal import Recipient, seal, seal_info

OUT = Path(__file__).with_name("vectors.json")
CREATED = datetime(2026, 12, 7, 8, 0, 0, tzinfo=UTC)


def _seed(label: str) -> bytes:
    return hashlib.sha256(f"neuron-hub test vector key: {label}".encode()).digest()


def _raw_private(key: Ed25519PrivateKey | X25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    ).hex()


def _raw_public(key: Ed25519PrivateKey | X25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def vectors() -> dict[str, Any]:
    consumer = Ed25519PrivateKey.from_private_bytes(_seed("consumer ed25519"))
    hub = Ed25519PrivateKey.from_private_bytes(_seed("hub ed25519"))
    police = X25519PrivateKey.from_private_bytes(_seed("public security x25519"))
    consumer_kid, hub_kid = "district-0a1b2c3d", "hub-20261207-5e6f7a8b"
    hub_jwk = {
        "kty": "OKP",
        "crv": "Ed25519",
        "kid": hub_kid,
        "x": b64u(bytes.fromhex(_raw_public(hub))),
        "use": "sig",
        "alg": "Ed25519",
    }

    # 1. A consumer's signed request (RFC 9421).
    url = "http://127.0.0.1:8700/v1/feeds/traffic.vehicle_flow_hourly/changes?since=eyJzZXEiOjR9&limit=100"
    request = requests.Request("GET", url).prepare()
    sign_request(request, consumer_kid, consumer, created=CREATED, nonce="bm9uY2UtZm9yLXRlc3QtdmVjdG9ycw")
    request_base = "\n".join(
        [
            '"@method": GET',
            '"@authority": 127.0.0.1:8700',
            '"@path": /v1/feeds/traffic.vehicle_flow_hourly/changes',
            '"@query": ?since=eyJzZXEiOjR9&limit=100',
            '"@signature-params": ' + request.headers["Signature-Input"].split("=", 1)[1],
        ]
    )

    # 2. The hub's signed response to it, bound to the request's signature.
    body = json.dumps({"changes": [], "next": "eyJzZXEiOjR9"}, separators=(",", ":")).encode()
    headers = FieldLines([("content-type", "application/json"), ("neuron-next-cursor", "eyJzZXEiOjR9")])
    headers["content-digest"] = body_digest(body)
    sign_response(200, headers, request.headers["Signature"], hub_kid, hub, created=CREATED)
    response_headers = dict(headers.items())
    components = response_headers["Signature-Input"].split("=", 1)[1]
    response_base = "\n".join(
        [
            f'"content-digest": {response_headers["content-digest"]}',
            '"@status": 200',
            '"content-type": application/json',
            '"neuron-next-cursor": eyJzZXEiOjR9',
            f'"signature";req: {request.headers["Signature"]}',
            f'"@signature-params": {components}',
        ]
    )

    # 3. A partition manifest, signed as a compact JWS (Ed25519 over canonical JSON).
    manifest = {
        "feed": "traffic.vehicle_flow_hourly",
        "consumer": "district",
        "partition": "community_id=music-square/day=2026-12-06",
        "version": 1,
        "sha256": hashlib.sha256(b"the partition's Parquet bytes").hexdigest(),
        "bytes": 29,
        "rows": 24,
        "schema": [{"name": "hour_start", "type": "timestamp[us, tz=UTC]"}, {"name": "entries", "type": "int64"}],
        "policy_fingerprint": "sha256:" + "0" * 64,
    }
    signing = SigningKey(hub_kid, hub, CREATED, datetime(2027, 12, 7, tzinfo=UTC))
    token = sign_json(manifest, signing)

    # 4. A value sealed to public security (RFC 9180 HPKE, deterministic ephemeral key).
    recipient = Recipient("public_security", "public_security-x25519-1", police.public_key())
    hub_seal_key, field, feed, plate = _seed("hub seal key"), "plate_no", "traffic.vehicle_passes", "沪A12345"
    sealed = seal(plate, recipient, hub_seal_key, field, feed=feed)
    info = seal_info(recipient.consumer, feed, field, recipient.key_id)
    blob = b64u_decode(sealed.split(".", 2)[2])
    return {
        "description": "Neuron Hub test vectors; every key here is a published test key (docs/consumers.md).",
        "keys": {
            "consumer_ed25519": {
                "kid": consumer_kid,
                "private_hex": _raw_private(consumer),
                "public_hex": _raw_public(consumer),
            },
            "hub_jwks": {"keys": [hub_jwk]},
            "public_security_x25519": {"private_hex": _raw_private(police), "public_hex": _raw_public(police)},
        },
        "signed_request": {
            "method": "GET",
            "url": url,
            "headers": {
                "Signature-Input": request.headers["Signature-Input"],
                "Signature": request.headers["Signature"],
            },
            "signature_base": request_base,
            "key": "consumer_ed25519",
        },
        "signed_response": {
            "status": 200,
            "headers": response_headers,
            "body": body.decode(),
            "request_signature": request.headers["Signature"],
            "signature_base": response_base,
            "key": hub_kid,
        },
        "manifest_jws": {
            "token": token,
            "payload": manifest,
            "payload_canonical": canonical_json(manifest).decode(),
            "key": hub_kid,
        },
        "hpke_sealed": {
            "suite": "RFC 9180 mode base: DHKEM(X25519, HKDF-SHA256) 0x0020, HKDF-SHA256 0x0001, AES-256-GCM 0x0002",
            "token": sealed,
            "consumer": recipient.consumer,
            "feed": feed,
            "field": field,
            "key_id": recipient.key_id,
            "info_hex": info.hex(),
            "aad_hex": "",
            "enc_hex": blob[:32].hex(),
            "ct_hex": blob[32:].hex(),
            "ikm_e_hex": ikm_for(hub_seal_key, info + b"\x00" + plate.encode()).hex(),
            "plaintext": plate,
        },
    }


def render() -> str:
    return json.dumps(vectors(), indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if OUT.read_text(encoding="utf-8") == text else 1)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
