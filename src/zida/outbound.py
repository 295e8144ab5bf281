"""A small HTTP/1.1 client for pushing events: POST a JSON body, read the answer, keep connections alive.

Event delivery sends one request per event to a handful of receivers, so the client is built for that: a pool of
kept-alive connections per (scheme, host, port) — at most ``_IDLE_PER_HOST`` each and ``_IDLE_TOTAL`` in all (the
least recently used host's go first); one unused for ``_IDLE_SECONDS`` is closed when the client next sends to its
host, or when its host is the least recently used — no redirects (a 3xx is an
answer like any other), no proxies from the environment, a deadline over the whole exchange, answers read up to
``MAX_ANSWER_BYTES`` (Content-Length, chunked, or until the server closes). A general-purpose client (httpx) spent
ten times the CPU per push, which on a busy server came out of the API's share.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

__all__ = ["MAX_ANSWER_BYTES", "Answer", "OutboundClient", "OutboundError"]

MAX_ANSWER_BYTES = 1024 * 1024
_MAX_HEAD_BYTES = 64 * 1024
_IDLE_PER_HOST = 64
# Receivers that come and go (subscriptions moved or deleted) must not leave their sockets open for the life of
# the process: a bound on all of them, and a time after which an unused one is closed.
_IDLE_TOTAL = 256
_IDLE_SECONDS = 30.0


class OutboundError(Exception):
    """The request could not be sent or its answer not read (connection refused, reset, malformed, too large)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A receiver's answer."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def is_redirect(self) -> bool:
        """A 3xx with a Location (never followed)."""
        return 300 <= self.status < 400 and "location" in self.headers


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
_Key = tuple[str, str, int]


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The one TLS context of every client (made once: about 27 ms of the event loop, the system's CA store read)."""
    return ssl.create_default_context()


@functools.lru_cache(maxsize=256)
def _split(url: str) -> tuple[tuple[str, str, int], str, str, str]:
    """A URL's (scheme, host, port), path, query and Host header (the same few URLs again and again)."""
    if not url.isascii():
        raise OutboundError(f"the URL is not ASCII (percent-encode it, IDNA for the host): {url[:200]}")
    try:
        parts = urlsplit(url)
        hostname, port = parts.hostname, parts.port
    except ValueError:
        raise OutboundError(f"the URL's host or port is not valid: {url[:200]}") from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise OutboundError(f"not an http(s) URL: {url[:200]}")
    if port == 0:
        raise OutboundError(f"the URL's port is 0: {url[:200]}")
    port = port or (443 if parts.scheme == "https" else 80)
    return (parts.scheme, hostname, port), parts.path or "/", parts.query, parts.netloc.rsplit("@", 1)[-1]


class OutboundClient:
    """POSTs JSON over kept-alive connections (module docstring)."""

    def __init__(self, user_agent: str = "Zida-Callback/1.0") -> None:
        self.user_agent = user_agent
        # Per host, its idle connections with the moment each became idle (oldest first); hosts least recently
        # used first.
        self._idle: OrderedDict[_Key, list[tuple[_Connection, float]]] = OrderedDict()
        self._idle_count = 0

    @property
    def idle_connections(self) -> int:
        """How many kept-alive connections wait for a next request."""
        return self._idle_count

    def _take_idle(self, key: _Key, now: float) -> _Connection | None:
        """The most recently used idle connection to ``key`` still young enough (the older ones are closed)."""
        idle = self._idle.get(key)
        found = None
        while idle and now - idle[0][1] >= _IDLE_SECONDS:  # a burst's extra connections, unused since
            (_, writer), _ = idle.pop(0)
            writer.close()
            self._idle_count -= 1
        while idle and found is None:
            connection, since = idle.pop()
            self._idle_count -= 1
            if now - since < _IDLE_SECONDS:
                found = connection
            else:
                connection[1].close()
        if idle is not None and not idle:
            del self._idle[key]
        return found

    def _put_idle(self, key: _Key, connection: _Connection, now: float) -> None:
        """Keep ``connection`` for a next request to ``key``, within the bounds (module docstring)."""
        idle = self._idle.setdefault(key, [])
        self._idle.move_to_end(key)
        if len(idle) >= _IDLE_PER_HOST:
            connection[1].close()
            return
        idle.append((connection, now))
        self._idle_count += 1
        # Close what waited too long, from the least recently used hosts, and the oldest past the total bound.
        while self._idle_count > 0:
            oldest_key = next(iter(self._idle))
            oldest = self._idle[oldest_key]
            if self._idle_count <= _IDLE_TOTAL and now - oldest[0][1] < _IDLE_SECONDS:
                break
            (_, writer), _ = oldest.pop(0)
            writer.close()
            self._idle_count -= 1
            if not oldest:
                del self._idle[oldest_key]

    async def post_json(self, url: str, params: dict[str, str], body: bytes, timeout: float) -> Answer:  # noqa: ASYNC109
        """POST ``body`` (JSON) to ``url`` with ``params`` added to its query; the answer, or ``OutboundError`` /
        ``TimeoutError`` past ``timeout`` seconds."""
        key, path, base_query, host = _split(url)
        query = "&".join(q for q in (base_query, urlencode(params)) if q)
        target = path + (f"?{query}" if query else "")
        head = (
            f"POST {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {self.user_agent}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
        ).encode("latin-1")
        async with asyncio.timeout(timeout):
            connection = self._take_idle(key, time.monotonic())
            if connection is not None:
                try:
                    return await self._exchange(key, connection, head + body)
                except (OutboundError, ConnectionError, asyncio.IncompleteReadError):
                    pass  # the receiver closed the kept-alive connection meanwhile: once more on a new one
            return await self._exchange(key, await self._open(key), head + body)

    async def _open(self, key: _Key) -> _Connection:
        scheme, host, port = key
        tls = _tls_context() if scheme == "https" else None
        try:
            return await asyncio.open_connection(host, port, ssl=tls, limit=_MAX_HEAD_BYTES)
        except OSError as exc:
            raise OutboundError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
        except (UnicodeError, ValueError) as exc:  # a host name the resolver cannot encode ("a..b")
            raise OutboundError(f"cannot connect to {host}:{port}: {exc}") from None

    async def _exchange(self, key: _Key, connection: _Connection, request: bytes) -> Answer:
        reader, writer = connection
        reusable = False
        try:
            writer.write(request)
            await writer.drain()
            answer, reusable = await _read_answer(reader)
            return answer
        except (asyncio.LimitOverrunError, ValueError):  # readline() turns a line past the limit into ValueError
            raise OutboundError("the answer's head is too large or malformed") from None
        except asyncio.IncompleteReadError:
            raise OutboundError("the receiver closed the connection in the middle of its answer") from None
        except OSError as exc:
            raise OutboundError(f"the connection failed: {exc.strerror or exc}") from None
        finally:
            if reusable:
                self._put_idle(key, connection, time.monotonic())
            else:
                writer.close()

    async def aclose(self) -> None:
        """Close every kept-alive connection."""
        for connections in self._idle.values():
            for (_, writer), _ in connections:
                with contextlib.suppress(Exception):
                    writer.close()
        self._idle.clear()
        self._idle_count = 0


async def _read_answer(reader: asyncio.StreamReader) -> tuple[Answer, bool]:
    """The answer, and whether its connection may carry another request."""
    status_line = await reader.readline()
    if not status_line:
        raise OutboundError("the receiver closed the connection without answering")
    try:
        version, code = status_line.split(b" ", 2)[:2]
        status = int(code)
    except ValueError:
        raise OutboundError("the answer is not HTTP") from None
    headers: dict[str, str] = {}
    size = len(status_line)
    while True:
        line = await reader.readline()
        size += len(line)
        if size > _MAX_HEAD_BYTES:
            raise OutboundError("the answer's head is too large")
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    keep = version == b"HTTP/1.1" and headers.get("connection", "").lower() != "close"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        declared = headers["content-length"]
        length = int(declared) if declared.isascii() and declared.isdigit() else -1
        if not 0 <= length <= MAX_ANSWER_BYTES:
            raise OutboundError("the answer's Content-Length is invalid or too large")
        body = await reader.readexactly(length)
    elif status in (204, 304) or 100 <= status < 200:
        body = b""
    else:
        body = await reader.read(MAX_ANSWER_BYTES + 1)
        keep = False
        if len(body) > MAX_ANSWER_BYTES:
            raise OutboundError("the answer is too large")
    return Answer(status, headers, body), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_line = await reader.readline()
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise OutboundError("the answer's chunked body is malformed") from None
        if size < 0:
            raise OutboundError("the answer's chunked body is malformed")
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        total += size
        if total > MAX_ANSWER_BYTES:
            raise OutboundError("the answer is too large")
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)
