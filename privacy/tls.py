"""The hub's TLS certificate (issue 17): made by `neuron init`, or the operator's own.

`neuron init` makes a self-signed certificate whose subject alternative names are the
hub's public names (`api.public_names`, default `api.host`) plus the console's host, with
an ECDSA P-256 key (mode 0600) under `var/keys/tls/`. It is its own trust anchor: a
consumer is given `hub.crt` with the JWKS fingerprint, out of band, and verifies the hub
with it (`neuron pull --ca hub.crt`). An operator with a certificate from the community's
CA sets `api.tls_certfile` and `api.tls_keyfile` instead, and nothing is generated.

The certificate is marked as a CA (basicConstraints critical, keyCertSign) so that Python's
strict X.509 verification accepts it as the anchor of itself; it can sign nothing else in
practice, since its key never leaves the hub.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kernel.errors import ConfigError
from kernel.settings import Settings

VALIDITY = timedelta(days=825)  # the CA/Browser Forum's old ceiling for a server certificate


@dataclass(frozen=True)
class HubCertificate:
    """Where the hub's certificate and its key are."""

    certfile: Path
    keyfile: Path

    def fingerprint(self) -> str:
        """The certificate's SHA-256 fingerprint (hex), as browsers show it."""
        cert = x509.load_pem_x509_certificate(self.certfile.read_bytes())
        return cert.fingerprint(hashes.SHA256()).hex()


def tls_dir(settings: Settings) -> Path:
    return settings.keys_dir / "tls"


def certificate_paths(settings: Settings) -> HubCertificate:
    """Where the hub's certificate is (the operator's when configured), whether or not it exists yet."""
    api = settings.api
    if api.tls_certfile or api.tls_keyfile:
        if not (api.tls_certfile and api.tls_keyfile):
            raise ConfigError("set both api.tls_certfile and api.tls_keyfile, or neither")
        return HubCertificate(settings.resolve(api.tls_certfile), settings.resolve(api.tls_keyfile))
    return HubCertificate(tls_dir(settings) / "hub.crt", tls_dir(settings) / "hub.key")


def hub_certificate(settings: Settings) -> HubCertificate:
    """The operator's certificate when configured, else the one `neuron init` made; ConfigError if none."""
    made = certificate_paths(settings)
    for path in (made.certfile, made.keyfile):
        if not path.is_file():
            raise ConfigError(f"no TLS certificate file {path}: run `neuron init`, or set api.tls_certfile/keyfile")
    return made


def subject_names(settings: Settings) -> list[str]:
    """The hosts the certificate must name: every public name's, the API's and the console's."""
    hosts = [name.rsplit(":", 1)[0] if name.count(":") == 1 else name for name in settings.api.authorities()]
    hosts += [settings.api.host, settings.api.console_host]
    return list(dict.fromkeys(h.strip("[]") for h in hosts if h and h not in ("0.0.0.0", "::")))


def ensure_certificate(settings: Settings, now: datetime | None = None) -> bool:
    """Make the hub's self-signed certificate unless it exists or the operator gave one; True if made."""
    api = settings.api
    if api.tls_certfile or api.tls_keyfile:
        hub_certificate(settings)  # the operator's files must be there
        return False
    folder = tls_dir(settings)
    certfile, keyfile = folder / "hub.crt", folder / "hub.key"
    if certfile.exists() and keyfile.exists():
        return False
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    descriptor = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    certfile.write_bytes(
        self_signed(key, subject_names(settings), settings.community_id, now).public_bytes(serialization.Encoding.PEM)
    )
    return True


def self_signed(
    key: ec.EllipticCurvePrivateKey, hosts: list[str], common_name: str, now: datetime | None = None
) -> x509.Certificate:
    """A self-signed server certificate for `hosts` (IP addresses or DNS names)."""
    now = now or datetime.now(UTC)
    alternative: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alternative.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alternative.append(x509.DNSName(host))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Neuron Hub {common_name}"[:64])])
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def jwks_fingerprint(jwks: dict[str, Any]) -> str:
    """The fingerprint a consumer pins the hub's JWKS by (`neuron keys show` prints it).

    SHA-256 over the canonical JSON of the keys' material only (kid, kty, crv, x, sorted by
    kid), so listing details (exp, use) do not change it; a rotation does, and the hub's
    operator then gives consumers the new one.
    """
    import json

    keys = jwks.get("keys", [])
    material = sorted(
        ({k: key.get(k) for k in ("kid", "kty", "crv", "x")} for key in keys if isinstance(key, dict)),
        key=lambda key: str(key["kid"]),
    )
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()
