"""RFC 9421 message signatures (Ed25519), shared by the hub and the consumer's client.
(The hub's responses are signed in api.response_signing.)

Consumers sign every request over `@method`, `@authority`, `@path` and `@query` with a
fresh nonce. The hub signs every response over `@status`, `content-digest`, `content-type`
and every `Neuron-*` header (the cursor and partition headers steer the client, so they
must not be alterable), plus, when the request carried a signature, that request's
`Signature` field (`"signature";req`): it binds a response to the one request it answers,
so a recorded response cannot be replayed as the answer to another request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    MappingKeyResolver,
)
from http_message_signatures.algorithms import ED25519

from kernel.errors import NeuronError
from privacy.keys import b64u_decode

log = logging.getLogger(__name__)

ALGORITHM = ED25519.algorithm_id
REQUEST_LABEL = "neuron"
RESPONSE_LABEL = "hub"
REQUEST_COMPONENTS = ("@method", "@authority", "@path", "@query")
REQUEST_BINDING = '"signature";req'
HEADER_PREFIX = "neuron-"


class SignatureExpired(InvalidSignature):
    """`created` is older than the window allows (or `expires` has passed)."""


class SignatureFromFuture(InvalidSignature):
    """`created` lies further ahead than the window allows."""


class WindowVerifier(HTTPMessageVerifier):
    """An Ed25519 verifier that accepts `created` within ±window of an injectable clock.

    The library's own check reads the wall clock and tolerates 5 s of skew into the
    future; consumers' clocks drift more than that, and tests need to move time.
    """

    def __init__(self, key_resolver: HTTPSignatureKeyResolver, window: timedelta, now: Callable[[], datetime]) -> None:
        super().__init__(signature_algorithm=ED25519, key_resolver=key_resolver)
        self.window = window
        self.now = now

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        params = sig_input.params
        if "created" not in params:
            raise InvalidSignature('Signature is missing a required "created" parameter')
        created = self._parse_integer_timestamp(params["created"], field_name="created")
        now = self.now()
        if created < now - self.window:
            raise SignatureExpired("signature expired")
        if created > now + self.window:
            raise SignatureFromFuture("signature created in the future")
        if "expires" in params and self._parse_integer_timestamp(params["expires"], "expires") < now:
            raise SignatureExpired("signature expired")


def public_keys_from_jwks(jwks: dict[str, Any]) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 keys of a JWKS by key id (other key types are ignored)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for jwk in jwks.get("keys", []):
        if isinstance(jwk, dict) and jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
            try:
                keys[str(jwk["kid"])] = Ed25519PublicKey.from_public_bytes(b64u_decode(str(jwk["x"])))
            except (KeyError, ValueError):
                continue
    return keys


def sign_request(
    request: Any,
    key_id: str,
    private_key: Ed25519PrivateKey,
    *,
    created: datetime | None = None,
    nonce: str | None = None,
    body: bytes | None = None,
) -> None:
    """Sign a request in place (any object with `method`, absolute `url`, `headers`); a `body`
    gets a Content-Digest, which the signature covers.

    The lean path writes exactly what the library would (tests compare them byte for byte);
    a request outside its profile is signed by the library."""
    created = created or datetime.now(UTC)
    nonce = nonce or secrets.token_urlsafe(24)
    try:
        _sign_lean(request, key_id, private_key, created, nonce, body)
        return
    except Outside:
        pass
    signer = HTTPMessageSigner(
        signature_algorithm=ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={key_id: private_key}),
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


def response_components(header_names: list[str], bound: bool) -> list[str]:
    """What a hub response signature covers besides `content-digest` (which signing adds)."""
    names = [n.lower() for n in header_names]
    components = ["@status"]
    if "content-type" in names:
        components.append("content-type")
    components += sorted({n for n in names if n.startswith(HEADER_PREFIX)})
    if bound:
        components.append(REQUEST_BINDING)
    return components


# ---------------------------------------------------------------------------------------------
# The lean path. Every request and response of the hub carries one signature of one shape: a
# single label, plain component names (`;req` only on the request's Signature), `created`,
# `keyid`, `alg`, `nonce`, Ed25519. For that shape, written canonically, the signature base is
# a few string joins: the serialised `@signature-params` is the Signature-Input member as
# sent. The library's general machinery (Structured Field parsing and re-serialisation,
# component resolvers, URL parsing) cost about twenty times the Ed25519 operation itself.
# Anything outside the shape raises `Outside`, and the caller hands the message to the
# library, which stays the reference: tests cross-check the two both ways on random messages.
# ---------------------------------------------------------------------------------------------

_LABEL = r"[a-z*][a-z0-9_\-.*]*"
_COMPONENT = r'"(?:@[a-z\-]+|[a-z0-9!#$%&\'*+\-.^_`|~]+)"(?:;req)?'
_STRING = r'"[\x20\x21\x23-\x5b\x5d-\x7e]*"'  # an sf-string that needs no escapes
_INTEGER = r"(?:0|-?[1-9][0-9]{0,14})"  # as Structured Fields serialise it: no leading zeros
_PARAM = rf";(?:(created|expires)=({_INTEGER})|(keyid|nonce|alg|tag)=({_STRING}))"
_INPUT = re.compile(rf"({_LABEL})=(\(((?:{_COMPONENT})(?: {_COMPONENT})*)?\)((?:{_PARAM})*))")
_SIGNATURE = re.compile(rf"({_LABEL})=:([A-Za-z0-9+/]{{86}}==):")  # 64 bytes, padded base64
_COMPONENTS = re.compile(_COMPONENT)
_PARAMS = re.compile(_PARAM)
# RFC 3986 characters of a path and a query, percent escapes well formed; a host in lower case.
_PCHAR = r"(?:[A-Za-z0-9._~!$&'()*+,;=:@/\-]|%[0-9A-Fa-f]{2})"
_PATH = re.compile(rf"/{_PCHAR}*")
_QUERY = re.compile(rf"(?:{_PCHAR}|\?)*")
_HOST = re.compile(r"([a-z0-9\-.]+)(?::([0-9]{1,5}))?")
_URL = re.compile(r"(https?)://([^/?#]+)(/[^?#]*)?(?:\?([^#]*))?")
_DIGEST_MEMBER = re.compile(r"(sha-256|sha-512)=:([A-Za-z0-9+/]+={0,2}):")
_DIGEST_SIZES = {"sha-256": 32, "sha-512": 64}
_DEFAULT_PORTS = {"http": "80", "https": "443"}
# Beyond these a timestamp is not a datetime the library can represent: it decides.
_LARGEST_TIMESTAMP = 10**11


class Outside(NeuronError):
    """The message is outside the lean profile: the library decides about it."""


class UnknownKey(InvalidSignature):
    """The signature names a key the verifier does not hold."""


class DigestMismatch(InvalidSignature):
    """The body needs a signed Content-Digest, and the one signed does not match it."""


@dataclass(frozen=True)
class ParsedSignature:
    """One signature of the lean profile, as the message carries it."""

    label: str
    components: tuple[str, ...]  # serialised identifiers: '"@method"', '"signature";req'
    params: dict[str, int | str]
    serialised: str  # the `@signature-params` value: the inner list and its parameters, as sent
    signature: bytes

    @property
    def key_id(self) -> str | None:
        value = self.params.get("keyid")
        return value if isinstance(value, str) else None

    @property
    def nonce(self) -> str | None:
        value = self.params.get("nonce")
        return value if isinstance(value, str) else None


def parse_signature(signature_input: str | None, signature: str | None) -> ParsedSignature:
    """The signature of a message whose Signature-Input and Signature fields are in the lean profile."""
    if signature_input is None or signature is None:
        raise Outside
    given, signed = _INPUT.fullmatch(signature_input.strip(" \t")), _SIGNATURE.fullmatch(signature.strip(" \t"))
    if given is None or signed is None or given.group(1) != signed.group(1):
        raise Outside
    components = tuple(m.group(0) for m in _COMPONENTS.finditer(given.group(3) or ""))
    params: dict[str, int | str] = {}
    for match in _PARAMS.finditer(given.group(4)):
        name = match.group(1) or match.group(3)
        if name in params:
            raise Outside  # a repeated parameter: Structured Fields keep the last, we do not guess
        params[name] = int(match.group(2)) if match.group(1) else match.group(4)[1:-1]
    if len(set(components)) != len(components):
        raise Outside
    for name in ("created", "expires"):
        value = params.get(name)
        if isinstance(value, int) and abs(value) >= _LARGEST_TIMESTAMP:
            raise Outside
    return ParsedSignature(given.group(1), components, params, given.group(2), base64.b64decode(signed.group(2)))


def _field_value(value: str | None) -> str:
    """A covered field's value as the signature base holds it (printable ASCII only here)."""
    if value is None:
        raise Outside  # absent: the library names the missing field
    value = value.strip(" \t")
    if not (value.isascii() and value.isprintable()):
        raise Outside
    return value


def authority(host: str | None, scheme: str) -> str:
    """`@authority` of a Host in lower case with an explicit, non-default port (or none)."""
    match = _HOST.fullmatch(host or "")
    if match is None or (match.group(2) is not None and match.group(2).lstrip("0") == _DEFAULT_PORTS.get(scheme)):
        raise Outside
    return match.group(0)


def request_components(
    method: str, scheme: str, host: str | None, path: str, query: str, header: Callable[[str], str | None]
) -> Callable[[str], str]:
    """Resolves a request's components: `path` and `query` as sent (query without its '?')."""
    if method != method.upper() or scheme not in _DEFAULT_PORTS:
        raise Outside
    if _PATH.fullmatch(path) is None or _QUERY.fullmatch(query) is None:
        raise Outside
    derived = {'"@method"': method, '"@authority"': authority(host, scheme), '"@path"': path, '"@query"': "?" + query}

    def resolve(component: str) -> str:
        if component in derived:
            return derived[component]
        if component.startswith('"@') or component.endswith(";req"):
            raise Outside
        return _field_value(header(component[1:-1]))

    return resolve


def response_resolver(
    status: int, header: Callable[[str], str | None], request_header: Callable[[str], str | None] | None
) -> Callable[[str], str]:
    """Resolves a response's components; `request_header` reads the request it answers, if known."""

    def resolve(component: str) -> str:
        if component == '"@status"':
            return str(status)
        if component.startswith('"@'):
            raise Outside
        if component.endswith(";req"):
            if request_header is None:
                raise Outside
            return _field_value(request_header(component[1:-5]))
        return _field_value(header(component[1:-1]))

    return resolve


def signature_base(signature: ParsedSignature, resolve: Callable[[str], str]) -> bytes:
    """The RFC 9421 signature base of a lean-profile signature."""
    lines = [f"{component}: {resolve(component)}" for component in signature.components]
    lines.append(f'"@signature-params": {signature.serialised}')
    return "\n".join(lines).encode()


def check_window(signature: ParsedSignature, now: datetime, window: timedelta) -> None:
    """The checks `WindowVerifier` makes of `created`, `expires`, `alg` and `keyid`, in its order."""
    created, expires = signature.params.get("created"), signature.params.get("expires")
    if not isinstance(created, int):
        raise InvalidSignature('Signature is missing a required "created" parameter')
    lowest, highest = (now - window).timestamp(), (now + window).timestamp()
    if created < lowest:
        raise SignatureExpired("signature expired")
    if created > highest:
        raise SignatureFromFuture("signature created in the future")
    if isinstance(expires, int) and expires < now.timestamp():
        raise SignatureExpired("signature expired")
    if signature.params.get("alg", ALGORITHM) != ALGORITHM:
        raise InvalidSignature("Unexpected algorithm specified in the signature")
    if signature.key_id is None:
        raise InvalidSignature('Signature is missing a required "keyid" parameter')


def verify_ed25519(key: Ed25519PublicKey, signature: ParsedSignature, base: bytes) -> None:
    """InvalidSignature unless `signature` is the key's signature of `base`."""
    try:
        key.verify(signature.signature, base)
    except CryptoInvalidSignature as exc:
        raise InvalidSignature("signature does not verify") from exc


def check_body_digest(signature: ParsedSignature, digest_field: str | None, body: bytes) -> None:
    """The library's body rule: a body (or a Content-Digest field) needs a signed digest that matches."""
    covered = '"content-digest"' in signature.components
    if not covered:
        if body or digest_field is not None:
            raise DigestMismatch("The message body requires a signed Content-Digest")
        return
    members = [member.strip(" \t") for member in _field_value(digest_field).split(",")]
    seen: set[str] = set()
    for member in members:
        match = _DIGEST_MEMBER.fullmatch(member)
        if match is None or match.group(1) in seen:
            raise Outside
        seen.add(match.group(1))
        try:
            expected = base64.b64decode(match.group(2), validate=True)
        except ValueError as exc:
            raise Outside from exc
        if len(expected) != _DIGEST_SIZES[match.group(1)]:
            raise Outside
        actual = hashlib.new(match.group(1).replace("-", ""), body).digest()
        if not hmac.compare_digest(expected, actual):
            raise DigestMismatch("Content-Digest does not match the message body")


def _sign_lean(
    request: Any, key_id: str, private_key: Ed25519PrivateKey, created: datetime, nonce: str, body: bytes | None
) -> None:
    url = _URL.fullmatch(str(request.url))
    if url is None:
        raise Outside
    scheme, host, path, query = url.group(1), url.group(2), url.group(3) or "/", url.group(4)
    headers = request.headers
    components = [*REQUEST_COMPONENTS]
    if body is not None:
        if any(name.lower() == "content-digest" for name in headers):
            raise Outside  # the library refuses to overwrite it, with its own message
        components.append("content-digest")
    for text in (key_id, nonce):
        if re.fullmatch(_STRING, f'"{text}"') is None:
            raise Outside
    resolve = request_components(request.method, scheme, host, path, query or "", lambda name: None)
    digest = None
    if body is not None:
        digest = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
    inner = " ".join(f'"{c}"' for c in components)
    params = f'({inner});created={int(created.timestamp())};keyid="{key_id}";alg="{ALGORITHM}";nonce="{nonce}"'
    lines = [f'"{c}": {resolve(chr(34) + c + chr(34))}' for c in REQUEST_COMPONENTS]
    if digest is not None:
        lines.append(f'"content-digest": {digest}')
    lines.append(f'"@signature-params": {params}')
    signature = base64.b64encode(private_key.sign("\n".join(lines).encode())).decode()
    if digest is not None:
        headers["Content-Digest"] = digest
    for name in [n for n in headers if n.lower() in ("signature-input", "signature")]:
        del headers[name]
    headers["Signature-Input"] = f"{REQUEST_LABEL}={params}"
    headers["Signature"] = f"{REQUEST_LABEL}=:{signature}:"
