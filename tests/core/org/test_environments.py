"""WeDa environments at the core: one corp holds an environment's prod data, another its preview (pre) data; each
kind once per environment; lookups from either corp find the other."""

from __future__ import annotations

import secrets

import pytest

from tests.conftest import SECRET_KEY
from zida.core.errors import Conflict, InvalidArgument
from zida.core.org.actions import CorpSpec, upsert_corp
from zida.core.org.repository import corp_of_environment, environment_corp
from zida.crypto import SecretBox
from zida.db import Database

pytestmark = pytest.mark.anyio


async def test_an_environment_has_one_corp_per_kind_of_data(db: Database) -> None:
    box, suffix = SecretBox(SECRET_KEY), secrets.token_hex(4)
    env = f"lowcode-{suffix}"

    async def put(corp_id: str, env_type: str | None) -> int:
        async with db.transaction() as tx:
            corp, _ = await upsert_corp(tx, box, CorpSpec(corp_id, corp_id, None, env, env_type), actor=None, now=1)
        return corp.pk

    prod = await put(f"envprod{suffix}", None)  # a new corp holds prod data unless it says otherwise
    pre = await put(f"envpre{suffix}", "pre")
    assert await corp_of_environment(db, env) == prod  # sign-in's client_id names the prod data
    found_pre, found_prod = await environment_corp(db, prod, "pre"), await environment_corp(db, pre, "prod")
    assert found_pre is not None and found_pre.pk == pre and found_pre.corp_id == f"envpre{suffix}"
    assert found_prod is not None and found_prod.pk == prod
    assert (await environment_corp(db, prod, "prod")) is not None

    with pytest.raises(Conflict) as raised:
        await put(f"envpre2{suffix}", "pre")
    assert raised.value.reason == "corp.env_taken" and f"envpre{suffix}" in raised.value.message
    with pytest.raises(InvalidArgument):
        await put(f"envbad{suffix}", "staging")
    assert (
        await db.fetchval(
            "SELECT count(*) FROM corp WHERE corp_id IN (:a, :b)", {"a": f"envpre2{suffix}", "b": f"envbad{suffix}"}
        )
        == 0
    )
    await put(f"envpre{suffix}", None)  # an update without a type keeps the corp's
    assert await db.fetchval("SELECT env_type FROM corp WHERE id = :p", {"p": pre}) == "pre"
