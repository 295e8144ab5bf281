"""The push client against real sockets: the answer framings receivers use (Content-Length, chunked, HTTP/1.0 until
close), kept-alive connections reused and a stale one replaced, redirects reported not followed, refused
connections, deadlines and oversized answers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from zida import outbound
from zida.outbound import MAX_ANSWER_BYTES, OutboundClient, OutboundError

pytestmark = pytest.mark.anyio

Respond = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[bool]]


async def serve(respond: Respond) -> tuple[asyncio.Server, str, list[bytes]]:
    """A raw HTTP server answering each request with ``respond`` (False: close the connection after it)."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length"))  # fmt: skip
                seen.append(head + await reader.readexactly(length))
                if not await respond(reader, writer, seen[-1]):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/cb?x=1", seen


def fixed(raw: bytes, keep: bool = True) -> Respond:
    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> bool:
        writer.write(raw)
        await writer.drain()
        return keep

    return respond


@pytest.mark.parametrize(
    ("raw", "keep"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsuccess", True),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nsuc\r\n4;x=y\r\ncess\r\n0\r\n\r\n", True),
        (b"HTTP/1.0 200 OK\r\n\r\nsuccess", False),
    ],
)
async def test_answer_framings_and_reuse(raw: bytes, keep: bool) -> None:
    server, url, seen = await serve(fixed(raw, keep))
    client = OutboundClient()
    try:
        for _ in range(3):
            answer = await client.post_json(url, {"nonce": "a b"}, b'{"encrypt":"x"}', 5)
            assert (answer.status, answer.body) == (200, b"success")
        assert seen[0].startswith(b"POST /cb?x=1&nonce=a+b HTTP/1.1\r\n") and seen[0].endswith(b'{"encrypt":"x"}')
        assert len(seen) == 3
    finally:
        await client.aclose()
        server.close()


async def test_a_stale_kept_alive_connection_is_replaced() -> None:
    server, url, seen = await serve(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", keep=False))
    client = OutboundClient()
    try:
        # The server closes after each answer though it said nothing: the next request finds the socket dead.
        for _ in range(3):
            assert (await client.post_json(url, {}, b"{}", 5)).body == b"ok"
        assert len(seen) == 3
    finally:
        await client.aclose()
        server.close()


async def test_redirects_are_reported_not_followed() -> None:
    server, url, seen = await serve(
        fixed(b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere/\r\nContent-Length: 0\r\n\r\n")
    )
    client = OutboundClient()
    try:
        answer = await client.post_json(url, {}, b"{}", 5)
        assert answer.status == 302 and answer.is_redirect and len(seen) == 1
    finally:
        await client.aclose()
        server.close()


async def test_refused_slow_and_oversized() -> None:
    client = OutboundClient()

    async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> bool:
        await asyncio.sleep(5)
        return False

    server, url, _ = await serve(never)
    big, big_url, _ = await serve(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_ANSWER_BYTES + 1)))
    try:
        with pytest.raises(TimeoutError):
            await client.post_json(url, {}, b"{}", 0.2)
        with pytest.raises(OutboundError, match="too large"):
            await client.post_json(big_url, {}, b"{}", 5)
        server.close()
        await server.wait_closed()
        with pytest.raises(OutboundError, match="cannot connect"):
            await client.post_json(url, {}, b"{}", 5)
        with pytest.raises(OutboundError, match="not an http"):
            await client.post_json("ftp://127.0.0.1/", {}, b"{}", 5)
    finally:
        await client.aclose()
        big.close()


async def refused(url: str) -> None:
    """A push to ``url`` fails with ``OutboundError`` (nothing else escapes)."""
    client = OutboundClient()
    try:
        with pytest.raises(OutboundError):
            await client.post_json(url, {}, b"{}", 5)
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nX-Long: "
        + b"a" * (70 * 1024)
        + b"\r\nContent-Length: 2\r\n\r\nok",  # a head line too long
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",  # closed in the middle of the body
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabc\r\n0\r\n\r\n",  # a negative chunk size
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",  # closed inside a chunk
    ],
)
async def test_a_malformed_answer_is_an_outbound_error(raw: bytes) -> None:
    # Each of these once escaped as ValueError / IncompleteReadError: a 500 at registration, a crashed push.
    server, url, _ = await serve(fixed(raw, keep=False))
    try:
        await refused(url)
    finally:
        server.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://[zz]/x",
        "http://127.0.0.1:0/x",
        "http://127.0.0.1/回调",
        "http://例子.测试/x",
        "http://a..b/x",
    ],
)
async def test_urls_it_cannot_send_to_are_outbound_errors(url: str) -> None:
    await refused(url)


async def test_kept_alive_connections_are_bounded_in_number_and_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Receivers that come and go (subscriptions moved or deleted) leave no socket open for good: at most
    ``_IDLE_TOTAL`` wait in all (the least recently used host's closed first), none longer than ``_IDLE_SECONDS``."""
    monkeypatch.setattr(outbound, "_IDLE_TOTAL", 8)
    monkeypatch.setattr(outbound, "_IDLE_SECONDS", 2.0)
    servers = [await serve(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")) for _ in range(20)]
    client = OutboundClient()
    try:
        for _, url, _ in servers:
            assert (await client.post_json(url, {}, b"{}", 5)).body == b"ok"
        assert client.idle_connections == 8
        # The most recently used hosts kept theirs: a next push to the last one reuses its connection.
        last_url, last_seen = servers[-1][1], servers[-1][2]
        await client.post_json(last_url, {}, b"{}", 5)
        assert client.idle_connections == 8 and len(last_seen) == 2
        await asyncio.sleep(2.1)
        # Past the idle time: the next push closes every connection that waited too long and opens a new one.
        await client.post_json(servers[0][1], {}, b"{}", 5)
        assert client.idle_connections == 1
    finally:
        await client.aclose()
        for server, _, _ in servers:
            server.close()
    assert client.idle_connections == 0
