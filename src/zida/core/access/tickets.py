"""Single-use grants (Stream-mode tickets): a grant's digest is recorded in the database every worker and host
shares until it expires, so that it is honoured once wherever it is shown (``stream_ticket_use``, migration 0024)."""

from __future__ import annotations

from zida.db import Database

__all__ = ["use_once"]


async def use_once(db: Database, digest: str, expires_at: int, now: int) -> bool:
    """Record the use of the grant with this ``digest`` (valid until ``expires_at``); False: it was used before.
    Uses past their grant's expiry are forgotten on the way."""
    async with db.transaction() as tx:
        await tx.execute("DELETE FROM stream_ticket_use WHERE expires_at <= :now", {"now": now})
        first = await tx.fetchval(
            "INSERT INTO stream_ticket_use (digest, expires_at) VALUES (:d, :e) ON CONFLICT DO NOTHING RETURNING 1",
            {"d": digest, "e": expires_at},
        )
    return first is not None
