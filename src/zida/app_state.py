"""The running server's shared objects (database, key box, token service)."""

from __future__ import annotations

from dataclasses import dataclass

from zida.core.access.tokens import TokenService
from zida.crypto import SecretBox
from zida.db import Database
from zida.settings import Settings

__all__ = ["Zida"]


@dataclass
class Zida:
    """Everything a request handler needs from the process."""

    settings: Settings
    db: Database
    box: SecretBox
    tokens: TokenService
