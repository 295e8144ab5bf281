"""``read_limited``, the one body reader of every dialect and the console, over ASGI messages as a server sends
them: the parts joined, the body kept for Starlette's ``Request.body()``, a disconnect and an oversized stream
stopped where they happen."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.requests import Request

from zida.core.errors import InvalidArgument
from zida.dialects.http import read_limited


def request(
    messages: list[dict[str, Any]], headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[Request, list[int]]:
    """A request whose receive hands out ``messages`` in order; the list counts the messages taken."""
    taken = [0]

    async def receive() -> dict[str, Any]:
        taken[0] += 1
        return messages[taken[0] - 1]

    scope = {"type": "http", "method": "POST", "path": "/x", "headers": headers or [], "query_string": b""}
    return Request(scope, receive), taken


def part(body: bytes, more: bool) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


def test_the_parts_are_joined_and_kept_for_request_body() -> None:
    req, taken = request([part(b'{"a": ', True), part(b"", True), part(b"1}", False)])
    assert asyncio.run(read_limited(req, 100)) == b'{"a": 1}'
    assert taken == [3]
    assert asyncio.run(req.body()) == b'{"a": 1}'  # Starlette's own reader: no message taken again
    assert asyncio.run(read_limited(req, 100)) == b'{"a": 1}'
    assert taken == [3]


def test_a_stream_past_the_limit_is_refused_at_the_part_that_crosses_it() -> None:
    req, taken = request([part(b"x" * 60, True), part(b"x" * 60, True), part(b"x" * 60, False)])
    with pytest.raises(InvalidArgument) as caught:
        asyncio.run(read_limited(req, 100, "the form"))
    assert caught.value.reason == "request.too_large" and "the form is larger than 100 bytes" in str(caught.value)
    assert taken == [2]


def test_a_declared_length_past_the_limit_is_refused_before_reading() -> None:
    req, taken = request([part(b"x" * 200, False)], headers=[(b"content-length", b"200")])
    with pytest.raises(InvalidArgument):
        asyncio.run(read_limited(req, 100))
    assert taken == [0]


def test_a_client_gone_midway_is_a_client_error() -> None:
    """Not Starlette's ClientDisconnect: the dialects answered that as an unhandled error (a 500 and a traceback)."""
    req, _ = request([part(b"{", True), {"type": "http.disconnect"}])
    with pytest.raises(InvalidArgument) as gone:
        asyncio.run(read_limited(req, 100))
    assert gone.value.reason == "request.truncated"


def test_an_empty_body_is_empty() -> None:
    req, _ = request([part(b"", False)])
    assert asyncio.run(read_limited(req, 100)) == b""
