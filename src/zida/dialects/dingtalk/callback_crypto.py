"""DingTalk's callback encryption (HTTP 回调 / 事件订阅 HTTP 推送), exactly as the platform does it.

The ``encodingAESKey`` (43 characters ``[a-zA-Z0-9]``) is base64 for a 32-byte AES-256 key; messages are
encrypted with AES-256-CBC, IV = the key's first 16 bytes, PKCS#7 padding to a **32-byte** block. The plaintext is
``16 random ASCII characters ‖ message length (4 bytes, big-endian) ‖ message (UTF-8) ‖ ownerKey (UTF-8)``, where
the ownerKey is the corpId for subscriptions registered with ``register_call_back``, the appKey for an app's
event subscription. A push carries ``sha1_hex(''.join(sorted([token, timestamp, nonce, encrypt])))`` as
``msg_signature`` and ``signature``; a receiver answers with the encrypted ``success`` signed the same way.

Receivers people run (DingTalk's ``DingCallbackCrypto``, the ``dingtalk-sdk`` package's ``DingTalkCrypto``)
decrypt what :func:`encrypt` writes; the two test vectors of DingTalk's documentation are unit tests.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
import re
import secrets
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from zida.core.errors import InvalidArgument

__all__ = ["BLOCK", "CallbackCrypto", "CryptoError", "aes_key", "random_text", "signature"]

BLOCK = 32  # DingTalk pads to 32 bytes, not AES's 16
_AES_KEY = re.compile(r"^[A-Za-z0-9]{43}$")


class CryptoError(InvalidArgument):
    """A message that does not decrypt, or is signed or addressed for someone else."""

    default_reason = "callback.crypto"


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte key of a 43-character ``encodingAESKey`` (anything else: DingTalk's 900004 "不合法的aeskey")."""
    if not isinstance(encoding_aes_key, str) or not _AES_KEY.match(encoding_aes_key):
        raise InvalidArgument(
            "aes_key must be 43 letters and digits (the base64 of a 32-byte key)", reason="callback.bad_aes_key"
        )
    try:
        key = base64.b64decode(encoding_aes_key + "=")
    except binascii.Error:  # pragma: no cover - 43 base64 characters always decode
        raise InvalidArgument("aes_key is not base64", reason="callback.bad_aes_key") from None
    if len(key) != 32:  # pragma: no cover - 43 base64 characters always decode to 32 bytes
        raise InvalidArgument("aes_key does not decode to 32 bytes", reason="callback.bad_aes_key")
    return key


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """DingTalk's message signature: SHA-1 (lower-case hex) of the four strings sorted and joined."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode(), usedforsecurity=False).hexdigest()


def random_text(length: int = 16) -> str:
    """``length`` random letters and digits, uniformly drawn (one ``os.urandom`` read, not one per character)."""
    out = b""
    while len(out) < length:  # base64 characters are uniform over 64; without + and / uniform over the other 62
        out += base64.b64encode(os.urandom(length + 8)).translate(None, b"+/")
    return out[:length].decode()


@dataclass(frozen=True)
class CallbackCrypto:
    """One subscription's keys: its ``token``, ``encodingAESKey`` and the ownerKey its messages carry."""

    token: str
    encoding_aes_key: str
    owner_key: str

    @functools.cached_property
    def key(self) -> bytes:
        """The AES-256 key (decoded once)."""
        return aes_key(self.encoding_aes_key)

    @functools.cached_property
    def _cipher(self) -> Cipher[modes.CBC]:
        # AES-256-CBC with the key's first 16 bytes as IV, every time: built once, a context per message.
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, message: str, *, random: str | None = None) -> str:
        """``message`` encrypted as a push's ``encrypt`` (``random``: the 16-character prefix, for tests)."""
        prefix = (random if random is not None else random_text()).encode()
        if len(prefix) != 16:
            raise ValueError("the random prefix is 16 ASCII characters")
        body = message.encode()
        plain = prefix + struct.pack(">I", len(body)) + body + self.owner_key.encode()
        pad = BLOCK - len(plain) % BLOCK
        padded = plain + bytes([pad]) * pad
        encryptor = self._cipher.encryptor()
        return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()

    def decrypt(self, encrypt: str) -> str:
        """The message of an ``encrypt`` value, checking that it was encrypted for this ownerKey."""
        try:
            data = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise CryptoError("encrypt is not base64") from None
        if not data or len(data) % 16:
            raise CryptoError("encrypt is not a whole number of AES blocks")
        decryptor = self._cipher.decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or len(plain) < 20 + pad:
            raise CryptoError("the message's padding is wrong: another aes_key?")
        plain = plain[:-pad]
        (length,) = struct.unpack(">I", plain[16:20])
        if 20 + length > len(plain):
            raise CryptoError("the message's length is wrong: another aes_key?")
        message, owner = plain[20 : 20 + length], plain[20 + length :]
        if owner != self.owner_key.encode():
            raise CryptoError("the message was encrypted for another corpId or appKey (DingTalk's 900010)")
        try:
            return message.decode()
        except UnicodeDecodeError:
            raise CryptoError("the message is not UTF-8") from None

    def sign(self, timestamp: str, nonce: str, encrypt: str) -> str:
        """The signature of a push or reply with these values."""
        return signature(self.token, timestamp, nonce, encrypt)

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        """The message of a signed ``encrypt`` (a wrong signature: DingTalk's 900005)."""
        expected = self.sign(timestamp, nonce, encrypt).encode()
        # As bytes: compare_digest refuses str with non-ASCII characters, which a receiver may well send.
        if not secrets.compare_digest(expected, (msg_signature or "").encode("utf-8", "replace")):
            raise CryptoError("the signature does not match the token (DingTalk's 900005)")
        return self.decrypt(encrypt)

    def envelope(self, message: str, timestamp: str, nonce: str) -> dict[str, str]:
        """A signed, encrypted message as receivers answer it: ``{msg_signature, timeStamp, nonce, encrypt}``."""
        encrypt = self.encrypt(message)
        return {
            "msg_signature": self.sign(timestamp, nonce, encrypt),
            "timeStamp": timestamp,
            "nonce": nonce,
            "encrypt": encrypt,
        }
