"""Stream-mode tickets: each opens one connection, whichever worker it is shown to (the use is in the database)."""

from __future__ import annotations

import secrets

import pytest

from tests.conftest import SECRET_KEY
from zida.clock import now_ms
from zida.crypto import SecretBox
from zida.db import Database
from zida.dialects.dingtalk.stream import _redeem, _sign

pytestmark = pytest.mark.anyio


def _ticket(box: SecretBox, expires: int) -> str:
    grant = {"credential": 1, "corp": 1, "corp_id": "corpA", "client_id": "k", "topics": ["*"], "mark": "m",
             "expires": expires, "nonce": secrets.token_hex(8)}  # fmt: skip
    return _sign(box, grant)


async def test_a_ticket_is_redeemed_once_by_any_number_of_workers(db: Database) -> None:
    """Without Redis each worker's store is its own memory: the use of a ticket was remembered only by the worker
    that took it, and one ticket opened a connection on each worker."""
    box = SecretBox(SECRET_KEY)
    ticket = _ticket(box, now_ms() + 90_000)
    first = await _redeem(box, db, ticket)
    assert first is not None and first["client_id"] == "k"
    assert await _redeem(SecretBox(SECRET_KEY), db, ticket) is None  # another worker: the same database
    assert await _redeem(box, db, _ticket(box, now_ms() - 1)) is None  # expired: refused, nothing kept


async def test_used_tickets_are_forgotten_once_they_expire(db: Database) -> None:
    box = SecretBox(SECRET_KEY)
    async with db.transaction() as tx:  # a ticket used a while ago, expired since
        await tx.execute(
            "INSERT INTO stream_ticket_use (digest, expires_at) VALUES (:d, :e)",
            {"d": secrets.token_hex(32), "e": now_ms() - 1_000},
        )
    assert await _redeem(box, db, _ticket(box, now_ms() + 90_000)) is not None
    assert await db.fetchval("SELECT COUNT(*) FROM stream_ticket_use WHERE expires_at <= :t", {"t": now_ms()}) == 0
