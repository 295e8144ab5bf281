"""Secrets at rest: slow hashes for secrets we only verify, authenticated encryption for ones we give back."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.fernet import Fernet, InvalidToken

__all__ = ["DUMMY_HASH", "SecretBox", "digest", "hash_secret", "verify_secret"]

# A well-formed hash no secret matches: checked against when the name is unknown, so that takes as long as a wrong
# secret does.
DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_secret(secret: str) -> str:
    """Hash an appSecret or password with scrypt and a random salt (``scrypt$n$r$p$salt$hash``)."""
    salt = os.urandom(16)
    dk = hashlib.scrypt(secret.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    return (
        f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${base64.b64encode(salt).decode()}${base64.b64encode(dk).decode()}"
    )


def verify_secret(secret: str, stored: str) -> bool:
    """Check ``secret`` against a ``hash_secret`` value in constant time."""
    try:
        scheme, n, r, p, salt_b64, dk_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = base64.b64decode(dk_b64)
    dk = hashlib.scrypt(
        secret.encode(), salt=base64.b64decode(salt_b64), n=int(n), r=int(r), p=int(p), dklen=len(expected)
    )
    return hmac.compare_digest(dk, expected)


def digest(value: str) -> str:
    """SHA-256 hex of a high-entropy value (tokens, systemTokens): fast lookup key, not reversible."""
    return hashlib.sha256(value.encode()).hexdigest()


class SecretBox:
    """Encrypts and derives secrets with the server key (``ZIDA_SECRET_KEY``)."""

    def __init__(self, server_key: str) -> None:
        material = hashlib.sha256(b"zida-encryption:" + server_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(material))
        self._mac_key = hashlib.sha256(b"zida-derivation:" + server_key.encode()).digest()
        self._opened: dict[str, str] = {}  # ciphertext → plaintext: secrets read again and again (event delivery)
        self._derived: dict[tuple[str, str, int], str] = {}  # (purpose, value, length) → derived: per-request checks

    def encrypt(self, plaintext: str) -> str:
        """Encrypt a secret the API must be able to give back."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        """Decrypt a value produced by :meth:`encrypt`; a wrong server key raises ``ValueError``."""
        plaintext = self._opened.get(ciphertext)
        if plaintext is not None:
            return plaintext
        try:
            plaintext = self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("secret cannot be decrypted with this ZIDA_SECRET_KEY") from exc
        if len(self._opened) >= 1024:
            self._opened.clear()
        self._opened[ciphertext] = plaintext
        return plaintext

    def derive(self, purpose: str, value: str, length: int = 32) -> str:
        """A keyed, deterministic hex string (HMAC-SHA256) for ``value``: re-derivable by the key holder only
        (tokens are derived, never stored; stored lookups such as systemToken digests can't be brute-forced
        from a dump without the key). Remembered for the values seen last (a systemToken is derived per request)."""
        key = (purpose, value, length)
        derived = self._derived.get(key)
        if derived is None:
            derived = hmac.new(self._mac_key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()[:length]
            if len(self._derived) >= 1024:
                self._derived.clear()
            self._derived[key] = derived
        return derived
