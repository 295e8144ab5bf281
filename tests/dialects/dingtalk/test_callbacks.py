"""Checking a would-be callback URL (``check_url``) against a real keep-alive receiver."""

from __future__ import annotations

import pytest

from tests.test_outbound import fixed, serve
from zida.core.errors import Conflict
from zida.core.events.subscriptions import SubscriptionSpec
from zida.dialects.dingtalk.callbacks import check_receiver
from zida.outbound import OutboundClient

pytestmark = pytest.mark.anyio

AES_KEY = "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7"


async def test_check_url_leaves_no_connection_in_the_delivery_pool() -> None:
    """The URL is whatever a caller registers (refused ones too): were its connection kept in the pool deliveries
    share, one registration per host name would hold one of the server's descriptors each, for good."""
    server, url, seen = await serve(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsuccess"))  # not encrypted
    pool = OutboundClient()
    try:
        spec = SubscriptionSpec("http", ("bpms_task_change",), url=url, token="zida-token", aes_key=AES_KEY)
        for _ in range(3):
            with pytest.raises(Conflict, match="did not answer check_url"):
                await check_receiver(pool, spec, "ding-corp", 5)
        assert len(seen) == 3 and pool.idle_connections == 0
    finally:
        await pool.aclose()
        server.close()
