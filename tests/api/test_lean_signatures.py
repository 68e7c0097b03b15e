"""The lean RFC 9421 path (api.signing) against http-message-signatures, the reference, on
seeded random messages, both ways: what the lean signer writes is byte for byte what the
library writes, and the lean verifiers (the hub's, of requests; the client's, of responses)
accept exactly what the library accepts, tampered messages included. The lean path must
also really be taken for the hub's own profile (else the benchmark measures the library)."""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSignaturesException, HTTPMessageSigner, MappingKeyResolver
from http_message_signatures.algorithms import ED25519

from api.asgi import FieldLines, body_digest
from api.auth import AuthError, KeyCache, LiveKey, RequestAuthenticator
from api.response_signing import sign_response
from api.signing import REQUEST_COMPONENTS, REQUEST_LABEL, WindowVerifier, response_components, sign_request
from api.verify import _required, _verify_lean, verify_response
from kernel.errors import IntegrityError
from privacy.keys import b64u

WINDOW = timedelta(seconds=300)
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
SAMPLES = 150
QUERY_CHARS = string.ascii_letters + string.digits + "-._~!$'()*+,;=:@/?% ^\"é"


class NoNonces:
    """A nonce store that remembers nothing (replays are not what these tests look at)."""

    deferred = True

    def check(self, key_id: str, nonce: str, now: datetime, connection: Any = None) -> None:
        return None


def _random_request(rng: random.Random) -> tuple[requests.PreparedRequest, bytes | None]:
    path = "/".join(
        rng.choice(["v1", "feeds", "traffic.vehicle_flow_hourly", "records", "a b", "%41", "é"]) for _ in range(3)
    )
    params = {
        "".join(rng.choices(string.ascii_lowercase, k=rng.randint(1, 6))): "".join(
            rng.choices(QUERY_CHARS, k=rng.randint(0, 12))
        )
        for _ in range(rng.randint(0, 3))
    }
    host = rng.choice(["127.0.0.1:8700", "hub.example", "HUB.example:443", "hub.example:80", "localhost:8080"])
    method = rng.choice(["GET", "GET", "POST"])
    request = requests.Request(method, f"http://{host}/{path}", params=params).prepare()
    body = (
        rng.choice([None, b"", b"payload", bytes(rng.randrange(256) for _ in range(40))]) if method == "POST" else None
    )
    return request, body


def _library_sign(
    request: Any, key_id: str, key: Ed25519PrivateKey, created: datetime, nonce: str, body: bytes | None
) -> None:
    signer = HTTPMessageSigner(
        signature_algorithm=ED25519, key_resolver=MappingKeyResolver(public_keys={}, private_keys={key_id: key})
    )
    signer.sign(
        request,
        key_id=key_id,
        created=created,
        nonce=nonce,
        label=REQUEST_LABEL,
        covered_component_ids=REQUEST_COMPONENTS,
        body=body,
    )


def _outcome(action: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """What became of `action(*args, **kwargs)` (called at once: arguments are bound by value)."""
    try:
        action(*args, **kwargs)
    except (HTTPMessageSignaturesException, IntegrityError, ValueError) as exc:
        return f"refused: {type(exc).__name__}"
    return "accepted"


def test_lean_request_signatures_are_the_librarys_byte_for_byte() -> None:
    rng, key = random.Random(9421), Ed25519PrivateKey.generate()
    seen = set()
    for _ in range(SAMPLES):
        ours, body = _random_request(rng)
        theirs = ours.copy()
        created = NOW + timedelta(seconds=rng.randint(-(10**6), 10**6))
        key_id, nonce = rng.choice(["district-1a2b3c4d", 'odd"id', "k"]), rng.choice(["n-1", "x" * 40, "sp ace", "é"])
        outcomes = [
            _outcome(sign_request, ours, key_id, key, created=created, nonce=nonce, body=body),
            _outcome(_library_sign, theirs, key_id, key, created, nonce, body),
        ]
        assert outcomes[0] == outcomes[1]
        assert list(ours.headers.items()) == list(theirs.headers.items())
        seen.add(outcomes[0])
    assert "accepted" in seen and len(seen) > 1  # signed, and refused alike


def _scope(request: requests.PreparedRequest) -> dict[str, Any]:
    url = str(request.url)
    authority, _, rest = url.partition("://")[2].partition("/")
    path, _, query = ("/" + rest).partition("?")
    headers = [(b"host", authority.encode())]
    headers += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in request.headers.items()]
    return {
        "type": "http",
        "method": request.method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": headers,
    }


class _View:
    """The request as the library sees it behind the hub (as api.asgi.request_view builds it)."""

    def __init__(self, scope: dict[str, Any]) -> None:
        fields = FieldLines.from_asgi(scope["headers"])
        self.method = scope["method"]
        query = scope["query_string"].decode("latin-1")
        self.url = f"http://{fields.get('host')}{scope['raw_path'].decode('latin-1')}" + (f"?{query}" if query else "")
        self.headers = fields


def _tamper(rng: random.Random, scope: dict[str, Any]) -> None:
    """One change an attacker (or a broken proxy) might make after signing."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    choice = rng.randrange(8)
    if choice == 0:
        scope["query_string"] += b"&limit=50"
    elif choice == 1:
        scope["raw_path"] = scope["raw_path"] + b"x"
    elif choice == 2:
        scope["method"] = "PUT" if scope["method"] != "PUT" else "GET"
    elif choice == 3:
        scope["headers"] = [(n, v.replace(b"127.0.0.1", b"127.0.0.2") if n == b"host" else v) for n, v in headers]
    elif choice == 4:
        scope["headers"] = [
            (n, v[:20] + (b"A" if v[20:21] != b"A" else b"B") + v[21:] if n == b"signature" else v) for n, v in headers
        ]
    elif choice == 5:
        scope["headers"] = [
            (n, v.replace(b"created=", b"created=1") if n == b"signature-input" else v) for n, v in headers
        ]
    elif choice == 6:
        scope["headers"] = [(n, v.replace(b'"@query"', b"") if n == b"signature-input" else v) for n, v in headers]
    else:
        scope["headers"] = [*headers, (b"signature-input", b'other=("@method");created=1;keyid="k"')]


def test_hub_accepts_exactly_the_requests_the_library_verifies() -> None:
    rng, key = random.Random(6), Ed25519PrivateKey.generate()
    cache = KeyCache(ttl=10**9)
    cache.put("district-1a2b3c4d", LiveKey("district", "district", key.public_key()))
    authenticator = RequestAuthenticator("sqlite:///unused", int(WINDOW.total_seconds()), NoNonces(), cache)
    reference = WindowVerifier(
        MappingKeyResolver(public_keys={"district-1a2b3c4d": key.public_key()}, private_keys={}), WINDOW, lambda: NOW
    )
    lean_taken, seen = 0, set()
    for n in range(SAMPLES * 2):
        request, body = _random_request(rng)
        created = NOW + timedelta(seconds=rng.choice([0, -299, 299, -301, 301]))
        sign_request(request, "district-1a2b3c4d", key, created=created, nonce=f"nonce-{n}", body=body)
        scope = _scope(request)
        if rng.random() < 0.5:
            _tamper(rng, scope)
        try:
            caller = authenticator.authenticate_scope(scope, NOW, body or b"")
        except AuthError as exc:
            lean = f"refused ({exc.code})"
        else:
            if caller is None:
                continue  # outside the lean profile: the library's own path decides
            lean, lean_taken = "accepted", lean_taken + 1
        library = _outcome(reference.verify, _View(scope), max_age=None, body=body or b"")
        assert (lean == "accepted") == (library == "accepted"), (lean, library, scope)
        seen.add(lean)
    assert lean_taken > SAMPLES // 3  # the hub's own profile does take the lean path
    assert {"accepted", "refused (bad_signature)", "refused (expired)", "refused (future)"} <= seen


class _Response:
    """What the client's verifier reads of a `requests.Response`."""

    def __init__(self, status: int, headers: FieldLines, body: bytes, request: requests.PreparedRequest) -> None:
        self.status_code = status
        self.headers: requests.structures.CaseInsensitiveDict[str] = requests.structures.CaseInsensitiveDict()
        for name in headers:
            self.headers[name] = headers.get(name) or ""
        self.content = body
        self.request = request


def _hub_response(rng: random.Random, key: Ed25519PrivateKey, kid: str, request: requests.PreparedRequest) -> _Response:
    body = rng.choice([b"", b'{"feeds":[]}', bytes(rng.randrange(256) for _ in range(64))])
    fields = FieldLines([("content-type", rng.choice(["application/json", "application/x-ndjson"]))])
    for _ in range(rng.randint(0, 3)):
        fields["Neuron-" + rng.choice(["Next-Cursor", "Partition", "Rows"])] = "".join(
            rng.choices(string.ascii_letters, k=8)
        )
    fields["content-digest"] = body_digest(body)
    status = rng.choice([200, 401, 404, 429])
    sign_response(status, fields, request.headers.get("Signature"), kid, key, created=NOW)
    return _Response(status, fields, body, request)


def _tamper_response(rng: random.Random, response: _Response) -> None:
    choice = rng.randrange(6)
    if choice == 0:
        response.content += b" "
    elif choice == 1:
        response.status_code = 200 if response.status_code != 200 else 203
    elif choice == 2:
        response.headers["Content-Type"] = "text/plain"
    elif choice == 3:
        response.headers["Neuron-Next-Cursor"] = "elsewhere"
    elif choice == 4:
        response.headers["Signature-Input"] = response.headers["Signature-Input"].replace('"content-type" ', "")
    else:
        response.request = response.request.copy()
        response.request.headers["Signature"] = "neuron=:" + "A" * 86 + "==:"


def test_client_accepts_exactly_the_responses_the_library_verifies() -> None:
    rng, key = random.Random(1), Ed25519PrivateKey.generate()
    jwks = {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "hub-1", "x": b64u(key.public_key().public_bytes_raw())}]}
    resolver = MappingKeyResolver(public_keys={"hub-1": key.public_key()}, private_keys={})
    seen = set()
    for n in range(SAMPLES):
        request = requests.Request("GET", "http://127.0.0.1:8700/v1/feeds").prepare()
        if rng.random() < 0.8:
            sign_request(request, "district-1", Ed25519PrivateKey.generate(), created=NOW, nonce=f"n{n}")
        response: Any = _hub_response(rng, key, "hub-1", request)
        if rng.random() < 0.5:
            _tamper_response(rng, response)
        clock = NOW + timedelta(seconds=rng.choice([0, 299, 301]))
        lean = _outcome(_verify_lean, response, jwks, clock, 300, response.content)
        at_clock = WindowVerifier(resolver, WINDOW, lambda instant=clock: instant)  # type: ignore[misc]
        required = _required(response)
        library = _outcome(at_clock.verify, response, max_age=None, require_components=required, body=response.content)
        assert (lean == "accepted") == (library == "accepted"), (lean, library)
        assert lean != "refused: Outside"  # the hub's responses are all in the lean profile
        public = _outcome(verify_response, response, jwks, now=lambda instant=clock: instant)
        assert (public == "accepted") == (library == "accepted")
        seen.add(lean)
    assert {"accepted", "refused: InvalidSignature", "refused: DigestMismatch", "refused: SignatureExpired"} <= seen


def test_response_outside_the_lean_profile_is_judged_by_the_library() -> None:
    key = Ed25519PrivateKey.generate()
    jwks = {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "hub-1", "x": b64u(key.public_key().public_bytes_raw())}]}
    request = requests.Request("GET", "http://127.0.0.1:8700/v1/feeds").prepare()
    response = _hub_response(random.Random(3), key, "hub-1", request)
    # A second signature label: the lean path steps aside; the library refuses an ambiguous pair.
    response.headers["Signature-Input"] += ', other=("@status");created=1;keyid="hub-1"'
    response.headers["Signature"] += ", other=:" + "A" * 86 + "==:"
    with pytest.raises(IntegrityError):
        verify_response(response, jwks, now=lambda: NOW)  # type: ignore[arg-type]
    assert response_components(["content-type"], bound=False) == ["@status", "content-type"]
