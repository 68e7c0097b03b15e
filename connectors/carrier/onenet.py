"""OneNET's HTTP-push security: URL verification, `msg_signature`, secure mode (AES).

From the OneNET HTTP-push developer manual and its official receiver sample (com.demo.util.Util):
signature = Base64(MD5(token + nonce + msg)), raw MD5 bytes, standard Base64; secure mode
AES-256-CBC with key = Base64Decode(EncodingAESKey + "="), IV = key[0:16], the plaintext being
16 random bytes + a 4-byte big-endian length L + L bytes of the msg JSON.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import struct
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class OneNetError(ValueError):
    """A push that fails OneNET's security rules; the message names a field, never a value."""


def signature(token: str, nonce: str, text: str) -> str:
    return base64.b64encode(hashlib.md5((token + nonce + text).encode()).digest()).decode()


def signature_ok(token: str, nonce: str, text: str, given: str) -> bool:
    # A '+' of the Base64 signature may arrive as a space when the platform did not URL-encode it.
    return hmac.compare_digest(signature(token, nonce, text), given.replace(" ", "+"))


def verification_answer(token: str, query: dict[str, str]) -> str | None:
    """The body answering a URL verification GET (the bare msg), None when its signature is wrong."""
    msg, nonce, given = query.get("msg"), query.get("nonce"), query.get("signature")
    if not msg or nonce is None or given is None:
        return None
    return msg if signature_ok(token, nonce, msg, given) else None


def raw_msg_text(body: str) -> str | None:
    """The exact text of the top-level `msg` value in a push body, as the platform signed it.

    Ambiguous in the manual: the signed text is "the msg", and the sample re-serialises the parsed
    object. We verify over the bytes received (re-serialising could change key order or spacing) and,
    failing that, over the compact re-serialisation (see `signed_texts`).
    """
    decoder = json.JSONDecoder()
    i = _skip(body, 0)
    if i >= len(body) or body[i] != "{":
        return None
    i += 1
    while True:
        i = _skip(body, i)
        if i >= len(body) or body[i] == "}":
            return None
        key, i = decoder.raw_decode(body, i)
        i = _skip(body, i)
        if i >= len(body) or body[i] != ":":
            return None
        start = _skip(body, i + 1)
        _, end = decoder.raw_decode(body, start)
        if key == "msg":
            return body[start:end]
        i = _skip(body, end)
        if i < len(body) and body[i] == ",":
            i += 1


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def signed_texts(body_text: str, parsed: dict[str, Any]) -> list[str]:
    """The texts a push's msg_signature may cover: enc_msg in secure mode; in plain mode the msg as
    received, then its compact re-serialisation."""
    if "enc_msg" in parsed:
        return [str(parsed["enc_msg"])]
    texts = []
    raw = raw_msg_text(body_text)
    if raw is not None:
        texts.append(raw)
    texts.append(json.dumps(parsed.get("msg"), separators=(",", ":"), ensure_ascii=False))
    return texts


def push_signature_ok(token: str, body_text: str, parsed: dict[str, Any]) -> bool:
    nonce, given = parsed.get("nonce"), parsed.get("msg_signature")
    if not isinstance(nonce, str) or not isinstance(given, str):
        return False
    return any(signature_ok(token, nonce, text, given) for text in signed_texts(body_text, parsed))


def decrypt(aes_key: str, enc_msg: str) -> str:
    """The msg JSON text of a secure-mode push."""
    try:
        key = base64.b64decode(aes_key + "=")
        sealed = base64.b64decode(enc_msg)
    except (binascii.Error, ValueError):
        raise OneNetError("enc_msg is not Base64") from None
    if len(key) != 32 or not sealed or len(sealed) % 16:
        raise OneNetError("enc_msg is not an AES-256-CBC ciphertext")
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = dec.update(sealed) + dec.finalize()
    # Padding: the manual says PKCS#7; WeChat-style receivers pad to 32 bytes. Both end in n bytes of
    # value n, and the length field says where the msg ends, so the padding is not checked further.
    if len(plain) < 20:
        raise OneNetError("enc_msg decrypts to less than its header")
    (length,) = struct.unpack(">I", plain[16:20])
    if length > len(plain) - 20:
        raise OneNetError("enc_msg length field exceeds the plaintext")
    try:
        return plain[20 : 20 + length].decode()
    except UnicodeDecodeError:
        raise OneNetError("enc_msg does not decrypt to UTF-8 (wrong EncodingAESKey?)") from None
