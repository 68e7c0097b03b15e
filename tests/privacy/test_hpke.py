"""privacy.hpke against RFC 9180's published vectors (appendix A.1 and A.2, mode base) and
against `cryptography`'s own HPKE, which opens what it seals with AES-256-GCM."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from privacy.hpke import (
    AEAD_AES_128_GCM,
    AEAD_AES_256_GCM,
    AEAD_CHACHA20_POLY1305,
    derive_key_pair,
    encap,
    key_schedule,
    seal_base,
)

# RFC 9180 appendix A.1.1 (AES-128-GCM) and A.2.1 (ChaCha20-Poly1305); the RFC has no vector
# for X25519 with AES-256-GCM, which differs only in the AEAD id and Nk (checked below
# against cryptography's implementation instead).
A1 = {
    "aead": AEAD_AES_128_GCM,
    "info": "4f6465206f6e2061204772656369616e2055726e",
    "ikmE": "7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234",
    "skEm": "52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736",
    "ikmR": "6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037",
    "skRm": "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8",
    "pkRm": "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d",
    "enc": "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431",
    "shared_secret": "fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc",
    "key": "4531685d41d65f03dc48f6b8302c05b0",
    "base_nonce": "56d890e5accaaf011cff4b7d",
    "exporter_secret": "45ff1c2e220db587171952c0592d5f5ebe103f1561a2614e38f2ffd47e99e3f8",
    # encryption sequence 0
    "pt": "4265617574792069732074727574682c20747275746820626561757479",
    "aad": "436f756e742d30",
    "ct": "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a",
}
A2 = {
    "aead": AEAD_CHACHA20_POLY1305,
    "info": "4f6465206f6e2061204772656369616e2055726e",
    "ikmE": "909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b",
    "skEm": "f4ec9b33b792c372c1d2c2063507b684ef925b8c75a42dbcbf57d63ccd381600",
    "ikmR": "1ac01f181fdf9f352797655161c58b75c656a6cc2716dcb66372da835542e1df",
    "skRm": "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb",
    "pkRm": "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a",
    "enc": "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a",
    "shared_secret": "0bbe78490412b4bbea4812666f7916932b828bba79942424abb65244930d69a7",
    "key": "ad2744de8e17f4ebba575b3f5f5a8fa1f69c2a07f6e7500bc60ca6e3e3ec1c91",
    "base_nonce": "5c4d98150661b848853b547f",
    "exporter_secret": "a3b010d4994890e2c6968a36f64470d3c824c8f5029942feb11e7a74b2921922",
}


def _private_hex(key: X25519PrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    ).hex()


@pytest.mark.parametrize("v", [A1, A2], ids=["A.1.1", "A.2.1"])
def test_key_derivation_encap_and_key_schedule_give_the_rfc_values(v: dict[str, object]) -> None:
    h = {k: bytes.fromhex(x) for k, x in v.items() if isinstance(x, str)}
    assert _private_hex(derive_key_pair(h["ikmE"])) == v["skEm"]
    recipient = derive_key_pair(h["ikmR"])
    assert _private_hex(recipient) == v["skRm"]
    shared, enc = encap(recipient.public_key(), h["ikmE"])
    assert (shared.hex(), enc.hex()) == (v["shared_secret"], v["enc"])
    key, nonce, exporter = key_schedule(shared, h["info"], int(str(v["aead"])))
    assert (key.hex(), nonce.hex(), exporter.hex()) == (v["key"], v["base_nonce"], v["exporter_secret"])


def test_the_first_message_of_a1_is_the_rfc_ciphertext() -> None:
    h = {k: bytes.fromhex(x) for k, x in A1.items() if isinstance(x, str)}
    recipient = derive_key_pair(h["ikmR"]).public_key()
    out = seal_base(recipient, h["info"], h["aad"], h["pt"], h["ikmE"], AEAD_AES_128_GCM)
    assert out == h["enc"] + h["ct"]


def test_cryptographys_hpke_opens_what_we_seal_with_aes_256_gcm() -> None:
    receiver = X25519PrivateKey.generate()
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
    for n in range(20):
        info, message = f"info {n}".encode(), f"沪A1234{n}".encode()
        sealed = seal_base(receiver.public_key(), info, b"", message, n.to_bytes(32, "big"), AEAD_AES_256_GCM)
        assert suite.decrypt(sealed, receiver, info=info) == message
