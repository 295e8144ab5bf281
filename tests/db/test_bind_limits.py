"""Values a database cannot bind are the client's error, never a 500: a number past 64 bits is InvalidArgument and
more arguments than PostgreSQL's protocol counts is TooExpensive, both before anything runs."""

from __future__ import annotations

import contextlib

import pytest

from zida.core.errors import InvalidArgument, TooExpensive
from zida.db import Database

pytestmark = pytest.mark.anyio


async def test_a_number_past_64_bits_is_refused_as_out_of_range(db: Database) -> None:
    for value in (2**63, -(2**63) - 1, 2**70):
        with pytest.raises(InvalidArgument, match="out of the range"):
            await db.fetchval("SELECT CAST(:x AS BIGINT)", {"x": value})
    assert await db.fetchval("SELECT CAST(:x AS BIGINT)", {"x": 2**63 - 1}) == 2**63 - 1


async def test_more_arguments_than_a_statement_may_bind_is_too_expensive(db: Database) -> None:
    names = [f"p{i}" for i in range(33_000)]
    query = f"SELECT count(*) FROM corp WHERE id IN ({', '.join(':' + n for n in names)})"
    if db.sql.name == "sqlite":  # its limit is a build option (this one may take them all): either answer is fine
        with contextlib.suppress(TooExpensive):
            assert await db.fetchval(query, dict.fromkeys(names, 1)) == 1
        return
    with pytest.raises(TooExpensive):  # PostgreSQL: 32,767 at most
        await db.fetchval(query, dict.fromkeys(names, 1))
