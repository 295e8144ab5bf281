"""Platform-looking identifiers: a time prefix (sortable) and a random tail (unguessable)."""

from __future__ import annotations

import secrets
import time

__all__ = [
    "is_decimal",
    "new_app_type",
    "new_form_instance_id",
    "new_form_uuid",
    "new_id",
    "new_row_id",
    "new_token",
]

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _base36(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rem = divmod(number, 36)
        digits.append(_ALPHABET[rem])
    return "".join(reversed(digits))


def _random(width: int) -> str:
    # One draw from the OS for the whole tail (a choice per character cost a syscall each).
    return _base36(secrets.randbelow(36**width), width)


def new_id(prefix: str, width: int = 40) -> str:
    """``prefix`` + 10 base36 chars of milliseconds + random base36 chars, ``width`` chars after the prefix."""
    return prefix + _base36(time.time_ns() // 1_000_000, 10) + _random(width - 10)


def new_form_instance_id() -> str:
    """A form instance id like ``FINST-…`` (40 chars after the dash)."""
    return new_id("FINST-")


def new_form_uuid() -> str:
    """A form id like ``FORM-…``."""
    return new_id("FORM-")


def new_app_type() -> str:
    """An app code like ``APP_…`` (20 chars after the prefix)."""
    return new_id("APP_", 20)


def new_row_id() -> str:
    """A sub-table row id."""
    return new_id("", 24).lower()


def new_token() -> str:
    """A random opaque secret (32 hex chars)."""
    return secrets.token_hex(16)


def is_decimal(text: str, max_digits: int = 19) -> bool:
    """Whether ``text`` is ASCII digits only, at most ``max_digits`` of them (19: any 64-bit id fits; str.isdigit
    alone also takes other scripts' digits and superscripts, which int() refuses or reads differently)."""
    return text.isascii() and text.isdigit() and len(text) <= max_digits
