"""The server process: what a started worker leaves out of the garbage collector's full collections."""

from __future__ import annotations

import gc

import pytest

from tests.conftest import SECRET_KEY
from zida.server import create_app
from zida.settings import load_settings

pytestmark = pytest.mark.anyio


async def test_a_started_worker_freezes_what_it_holds(loaded_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full collection would otherwise walk every module, class and function of the process (~100,000 objects)."""
    monkeypatch.setenv("ZIDA_SECRET_KEY", SECRET_KEY)
    app = create_app(load_settings(loaded_url))
    async with app.router.lifespan_context(app):
        frozen = gc.get_freeze_count()
        tracked = len(gc.get_objects())  # what a full collection walks now
    assert frozen > 10_000 and tracked < frozen
