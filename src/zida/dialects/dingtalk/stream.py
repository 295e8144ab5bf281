"""DingTalk Stream mode: the gateway that opens connections, and the WebSocket that carries events to them.

The official Stream SDKs (PyPI and npm ``dingtalk-stream``) run unchanged: pointed at Zida (Python:
``DINGTALK_OPENAPI_ENDPOINT=http://host:port``; Node: ``require('dingtalk-stream/constants').GATEWAY_URL``), they

1. ``POST /v1.0/gateway/connections/open`` with ``{clientId, clientSecret, subscriptions: [{type, topic}], ua}``:
   the clientId and secret of an app credential with the ``Event.Subscription`` permission point (scope
   ``events``). The answer is ``{endpoint, ticket}``: this server's WebSocket address (``ZIDA_PUBLIC_URL`` or the
   request's own host) and a single-use ticket valid for ``ZIDA_STREAM_TICKET_SECONDS`` (90 s), signed with the
   server key so any worker accepts it, once (its use is recorded in the database every worker shares). A wrong
   secret is DingTalk's 400 ``invalidClientIdOrSecret``; nothing is stored.
2. open ``<endpoint>?ticket=…``; a missing, used or expired ticket is refused (HTTP 403) before the upgrade.

Subscriptions of type ``EVENT`` (topic ``*`` or event types such as ``bpms_instance_change``; Zida's opt-in
``yida_form_instance_change`` only by name) make the credential's ``stream`` subscription
(``zida.core.events.subscriptions``) receive those types from then on — it stays when the client disconnects, so
events committed meanwhile wait and are sent when it is back. ``CALLBACK`` subscriptions (robot messages, card
callbacks) are accepted and never fire: Zida has no robots or cards.

Frames: ``EVENT`` frames carry ``headers`` (``appId, connectionId, contentType, messageId, time, topic`` and the
event's ``eventType, eventId, eventBornTime, eventCorpId, eventUnifiedAppId``) and ``data`` (a JSON string). The
client acks with ``{code, headers: {messageId}, message, data}``: code 200 is delivered unless ``data`` says
``{"status": "LATER"}``; another code, ``LATER``, or no ack within ``ZIDA_STREAM_ACK_SECONDS`` is a failed attempt,
sent again after the subscription's backoff (``zida.core.events.delivery``). ``SYSTEM`` frames: ``ping`` every
``ZIDA_STREAM_PING_SECONDS`` (the SDKs answer it) and ``disconnect`` when the server stops (the SDKs reconnect).
Several connections of one app share its events: the app's subscription takes the topics of all its connections
on this worker together (a client connecting adds its topics; it never takes away another's, so a ``*`` client
connected keeps receiving every type while a narrower one connects), and each event goes to one of the connections
that asked for its type (another that takes events only when none of them is connected here).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from zida.app_state import Zida
from zida.clock import now_ms
from zida.core.access.tickets import use_once
from zida.core.access.tokens import secret_mark
from zida.core.errors import InvalidArgument
from zida.core.events.delivery import Delivery
from zida.core.events.subscriptions import STREAM, Subscription, SubscriptionSpec, register_subscription
from zida.core.events.worker import NOT_SENT
from zida.core.org.models import CorpRef
from zida.crypto import SecretBox
from zida.db import Database
from zida.dialects.dingtalk.callbacks import check_tags
from zida.dialects.dingtalk.events import OPT_IN_TAGS
from zida.dialects.dingtalk.http import Call, endpoint, require_permission

__all__ = ["STREAM_PATH", "StreamHub", "routes", "websocket_routes"]

log = logging.getLogger("zida.events")

STREAM_PATH = "/v1.0/gateway/connections/stream"
_TYPES = ("EVENT", "CALLBACK", "SYSTEM")
_MAX_SUBSCRIPTIONS = 100
_TICKET = "stream-ticket"
_MAX_TICKET = 16_384


@dataclass(eq=False)
class StreamConnection:
    """One client's WebSocket, and the acks it owes (``events``: it subscribed to EVENT topics)."""

    connection_id: str
    websocket: WebSocket
    client_id: str
    credential_pk: int
    events: bool = True
    topics: tuple[str, ...] = ()
    pending: dict[str, asyncio.Future[tuple[int, Any]]] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed: bool = False

    async def send(self, frame: dict[str, Any]) -> None:
        """Send one frame (frames of concurrent senders never interleave)."""
        async with self.lock:
            await self.websocket.send_text(orjson.dumps(frame).decode())

    def wants(self, tag: str) -> bool:
        """Whether the client asked for events of this type (an opt-in type only by name, never through ``*``)."""
        return tag in self.topics or ("*" in self.topics and tag not in OPT_IN_TAGS)

    async def send_all(self, frames: Sequence[str]) -> int:
        """Send serialised frames in order, none of another sender's between them; returns how many went out (the
        rest could not: the connection failed)."""
        written = 0
        async with self.lock:
            for text in frames:
                try:
                    await self.websocket.send_text(text)
                except Exception:
                    break
                written += 1
        return written


class StreamHub:
    """This worker's Stream connections; the delivery channel of ``stream`` subscriptions
    (``zida.core.events.worker.Channel``)."""

    kinds = frozenset({STREAM})

    def __init__(self, ack_seconds: float, ping_seconds: float, per_subscription: int = 1024) -> None:
        self.ack_seconds = ack_seconds
        self.ping_seconds = ping_seconds
        self.per_subscription = per_subscription
        self.connections: dict[int, list[StreamConnection]] = {}
        self._turn = itertools.count()
        self.wake: Any = None  # the delivery worker's wake(), set by the server

    def _receivers(self, credential_pk: int) -> list[StreamConnection]:
        """The app's connections that take events (not those that subscribed to CALLBACK topics only)."""
        return [c for c in self.connections.get(credential_pk, ()) if c.events]

    def ready(self, subscription: Subscription) -> bool:
        return bool(self._receivers(subscription.credential_pk))

    def capacity(self, subscription: Subscription) -> int:
        return self.per_subscription

    def lease_ms(self) -> int:
        return int(self.ack_seconds * 1000) + 5_000

    def add(self, connection: StreamConnection) -> None:
        """A client connected: its app's waiting events go to it."""
        self.connections.setdefault(connection.credential_pk, []).append(connection)
        if self.wake is not None:
            self.wake()

    def remove(self, connection: StreamConnection) -> None:
        """A client went away: what it had not acked is due again at once."""
        connection.closed = True
        group = self.connections.get(connection.credential_pk, [])
        if connection in group:
            group.remove(connection)
        if not group:
            self.connections.pop(connection.credential_pk, None)
        for future in connection.pending.values():
            if not future.done():
                future.set_exception(ConnectionError("the Stream connection closed"))

    def topics_of(self, credential_pk: int) -> tuple[str, ...]:
        """The EVENT topics the app's connections on this worker asked for, together."""
        return tuple(dict.fromkeys(t for c in self._receivers(credential_pk) for t in c.topics))

    async def send(self, subscription: Subscription, deliveries: Sequence[Delivery]) -> list[str | None]:
        """Send each delivery to one of the app's connections that asked for its type (any that takes events when
        none did), each connection's frames back to back, then wait (one deadline for all) for their acks."""
        group = self._receivers(subscription.credential_pk)
        if not group:
            return [NOT_SENT] * len(deliveries)
        turn = next(self._turn)
        batches: dict[int, tuple[StreamConnection, list[int]]] = {}
        for index, delivery in enumerate(deliveries):
            wanting = [c for c in group if c.wants(delivery.tag)] or group
            connection = wanting[turn % len(wanting)]
            batches.setdefault(id(connection), (connection, []))[1].append(index)
        outcomes: list[str | None] = [NOT_SENT] * len(deliveries)
        sent = await asyncio.gather(
            *(self._send_on(connection, [deliveries[i] for i in indexes]) for connection, indexes in batches.values())
        )
        for (_, indexes), results in zip(batches.values(), sent, strict=True):
            for index, outcome in zip(indexes, results, strict=True):
                outcomes[index] = outcome
        return outcomes

    async def _send_on(self, connection: StreamConnection, deliveries: Sequence[Delivery]) -> list[str | None]:
        """Write one EVENT frame per delivery on the connection, back to back, then wait for their acks."""
        loop = asyncio.get_running_loop()
        batch, sent_at = secrets.token_hex(6), str(now_ms())
        frames: list[str] = []
        waits: list[tuple[str, asyncio.Future[tuple[int, Any]]]] = []
        for delivery in deliveries:
            message_id = f"{delivery.pk}-{batch}"  # unique per attempt: a delivery is in a batch once
            headers = {
                "appId": connection.client_id,
                "connectionId": connection.connection_id,
                "contentType": "application/json",
                "messageId": message_id,
                "time": sent_at,
                "topic": delivery.tag,
                **delivery.payload["headers"],
            }
            data = orjson.dumps(delivery.payload["data"]).decode()
            frames.append(
                orjson.dumps({"specVersion": "1.0", "type": "EVENT", "headers": headers, "data": data}).decode()
            )
            future: asyncio.Future[tuple[int, Any]] = loop.create_future()
            connection.pending[message_id] = future
            waits.append((message_id, future))
        try:
            written = 0 if connection.closed else await connection.send_all(frames)
            futures = [future for _, future in waits[:written]]
            if futures:
                await asyncio.wait(futures, timeout=self.ack_seconds)
            return [_outcome(future, self.ack_seconds) for future in futures] + [NOT_SENT] * (len(waits) - written)
        finally:
            for message_id, future in waits:
                connection.pending.pop(message_id, None)
                if not future.done():
                    future.cancel()
                elif not future.cancelled():
                    future.exception()  # seen (a closed connection's): asyncio logs none never retrieved

    async def close_all(self) -> None:
        """Tell every client this server is going away (SYSTEM ``disconnect``) and close the sockets."""
        for group in list(self.connections.values()):
            for connection in list(group):
                with contextlib.suppress(Exception):
                    await connection.send(_system("disconnect", {"reason": "server stopping"}))
                with contextlib.suppress(Exception):
                    await connection.websocket.close(1000)


def _outcome(future: asyncio.Future[tuple[int, Any]], ack_seconds: float) -> str | None:
    """What an EVENT frame's ack (or its absence) means for its delivery."""
    if not future.done():
        return f"no ack within {ack_seconds:g} s"
    if future.exception() is not None:  # the connection closed before the ack came
        return NOT_SENT
    code, data = future.result()
    if code != 200:
        return f"the client answered code {code}"
    if isinstance(data, dict) and data.get("status") == "LATER":
        return "the client answered LATER"
    return None


def _system(topic: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specVersion": "1.0",
        "type": "SYSTEM",
        "headers": {
            "contentType": "application/json",
            "messageId": secrets.token_hex(8),
            "time": str(now_ms()),
            "topic": topic,
        },
        "data": orjson.dumps(data).decode(),
    }


def _subscriptions(value: Any) -> list[tuple[str, str]]:
    if value is None:
        return [("EVENT", "*")]
    if not isinstance(value, list) or len(value) > _MAX_SUBSCRIPTIONS:
        raise InvalidArgument(f"{{param}} must be a list of at most {_MAX_SUBSCRIPTIONS} {{type, topic}} objects",
                              reason="argument.invalid", param="subscriptions")  # fmt: skip
    out = []
    for item in value:
        if not isinstance(item, dict) or item.get("type") not in _TYPES or not isinstance(item.get("topic"), str):
            raise InvalidArgument("{param}: each is {type: EVENT|CALLBACK, topic}", reason="argument.invalid",
                                  param="subscriptions")  # fmt: skip
        out.append((item["type"], item["topic"]))
    return out


def _endpoint_base(call: Call) -> str:
    base = call.zida.settings.public_url or str(call.request.base_url).rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :]
    return "ws://" + base.removeprefix("http://")


@endpoint(None, authenticate=False)
async def open_connection(call: Call) -> dict[str, Any]:
    """Check the app's clientId and secret, and hand out the WebSocket endpoint and a single-use ticket."""
    client_id = call.text("clientId", "body", required=True, max_chars=128) or ""
    secret = call.text("clientSecret", "body", required=True, max_chars=1024) or ""
    subscriptions = _subscriptions(call.body.get("subscriptions"))
    principal = await call.zida.tokens.verify(client_id, secret)
    require_permission(principal, "Event.Subscription")
    topics = [topic for kind, topic in subscriptions if kind == "EVENT"]
    if topics:
        check_tags(topics, "subscriptions")
    grant = {
        "credential": principal.credential_pk,
        "corp": principal.corp_pk,
        "corp_id": principal.corp_id,
        "client_id": principal.client_id,
        "topics": topics,
        "mark": await secret_mark(call.zida.db, principal.credential_pk or 0),
        "expires": now_ms() + int(call.zida.settings.stream_ticket_seconds * 1000),
        "nonce": secrets.token_hex(8),
    }
    return {"endpoint": _endpoint_base(call) + STREAM_PATH, "ticket": _sign(call.zida.box, grant)}


def _sign(box: SecretBox, grant: dict[str, Any]) -> str:
    """A ticket: the grant (URL-safe base64 JSON) and its MAC with the server key — any worker can check it."""
    body = base64.urlsafe_b64encode(orjson.dumps(grant)).rstrip(b"=").decode()
    return f"{body}.{box.derive(_TICKET, body, 64)}"


async def _redeem(box: SecretBox, db: Database, ticket: str) -> dict[str, Any] | None:
    """The grant of an authentic, unexpired, unused ticket, used up now on every worker and host: its digest goes
    into the database they share (the store is each worker's own memory without Redis: one ticket opened a
    connection on each)."""
    body, _, mac = ticket.rpartition(".")
    if not body or len(ticket) > _MAX_TICKET or not ticket.isascii():
        return None
    if not hmac.compare_digest(mac, box.derive(_TICKET, body, 64)):
        return None
    grant: dict[str, Any] = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    now = now_ms()
    if grant["expires"] <= now:
        return None
    first = await use_once(db, hashlib.sha256(ticket.encode()).hexdigest(), int(grant["expires"]), now)
    return grant if first else None


async def stream_socket(websocket: WebSocket) -> None:
    """A client's Stream connection (module docstring)."""
    zida: Zida = websocket.app.state.zida
    hub: StreamHub | None = zida.stream_hub
    grant = await _redeem(zida.box, zida.db, websocket.query_params.get("ticket", ""))
    if grant is not None and await secret_mark(zida.db, grant["credential"]) != grant.get("mark"):
        grant = None  # the credential was revoked or its secret rotated since the ticket was handed out
    if grant is None or hub is None:
        await websocket.close(code=1008)
        return
    topics = tuple(grant["topics"])
    if topics:  # with the topics of the app's other connections here: a client never takes away another's
        tags = tuple(dict.fromkeys((*hub.topics_of(grant["credential"]), *topics)))
        # Its topics change with the app's connections (clients of other topics reconnecting in turn change them
        # each time): not audited, or every connection would leave an audit row for good. Its creation is.
        await register_subscription(
            zida.db, zida.box, CorpRef(grant["corp"], grant["corp_id"]), grant["client_id"],
            SubscriptionSpec(kind=STREAM, tags=tags), replace=None,
            actor=f"credential:{grant['client_id']}", audit_changes=False,
        )  # fmt: skip
    await websocket.accept()
    connection = StreamConnection(
        connection_id=secrets.token_hex(12),
        websocket=websocket,
        client_id=grant["client_id"],
        credential_pk=grant["credential"],
        events=bool(topics),
        topics=topics,
    )
    hub.add(connection)
    pinger = asyncio.create_task(_ping(connection, hub.ping_seconds))
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("text")
            if data is None and message.get("bytes") is not None:  # a binary frame: read as UTF-8 text, or ignored
                data = message["bytes"].decode("utf-8", "replace")
            if data:
                _acked(connection, data)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        pinger.cancel()
        hub.remove(connection)
        if websocket.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close(1000)


def _acked(connection: StreamConnection, text: str) -> None:
    """Match an ack to the frame it answers (anything else a client sends is ignored)."""
    try:
        ack = orjson.loads(text)
        message_id = ack["headers"]["messageId"]
        code = int(ack.get("code", 200))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return
    future = connection.pending.get(str(message_id))
    if future is None or future.done():
        return
    data: Any = ack.get("data")
    if isinstance(data, str):
        with contextlib.suppress(orjson.JSONDecodeError):
            data = orjson.loads(data)
    future.set_result((code, data))


async def _ping(connection: StreamConnection, every: float) -> None:
    with contextlib.suppress(Exception):
        while not connection.closed:
            await asyncio.sleep(every)
            await connection.send(_system("ping", {"opaque": secrets.token_hex(8)}))


def routes() -> list[Route]:
    """The gateway route (api.dingtalk.com's mount)."""
    return [Route("/v1.0/gateway/connections/open", open_connection, methods=["POST"])]


def websocket_routes() -> list[WebSocketRoute]:
    """The Stream WebSocket."""
    return [WebSocketRoute(STREAM_PATH, stream_socket)]
