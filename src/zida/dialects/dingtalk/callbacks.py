"""DingTalk HTTP callbacks: pushing events to registered URLs, the ``check_url`` handshake, and the oapi routes that
register callbacks and read the failed lists.

**A push** (dingtalk-platform.md §4.2–4.4): ``POST <url>?msg_signature=…&signature=…&timestamp=<ms>&nonce=<16>``
with ``{"encrypt": …}``: the plaintext JSON encrypted with the subscription's aes_key and owner key (the corpId for
``register_call_back`` registrations, the appKey for event subscriptions), signed with its token. The receiver must
answer HTTP 200 within ``ZIDA_CALLBACK_TIMEOUT_SECONDS`` (1.5 s, as DingTalk) with ``{msg_signature, timeStamp,
nonce, encrypt}`` whose signature checks and whose ``encrypt`` decrypts to ``success``; anything else — another
status, a redirect (never followed), a timeout, a wrong signature or text — is a failed attempt, retried on the
subscription's schedule (``zida.core.events.delivery``). Requests go only to the registered URL.

**Registration** sends ``{"EventType":"check_url"}`` first and refuses (71009) unless the receiver answers it
correctly; nothing is stored then.

========================================== =========================================================================
route (``?access_token=``)                 effect
========================================== =========================================================================
POST ``/call_back/register_call_back``     ``{call_back_tag, token, aes_key, url}`` → the token's app's callback
POST ``/call_back/update_call_back``       same body: replace it (check_url again)
GET  ``/call_back/get_call_back``          ``{call_back_tag, token, aes_key, url}``
GET  ``/call_back/delete_call_back``       delete it (pending deliveries are dropped)
GET  ``/call_back/get_call_back_failed_result``  ``{has_more, failed_list}``: up to 200 failed events, each returned
                                           once (reading consumes them, as DingTalk)
POST ``/topapi/callback/failrecord/list``  ``{failed_list: [{id, call_back_tag, call_back_data, corpid, event_time}],
                                           has_more}`` (not consumed; ``req.size`` ≤ 200, ``req.cursor``)
POST ``/topapi/callback/failrecord/confirm``  ``{id_list}`` (≤ 100) → ``{confirm_list}``: out of the oapi lists
GET  ``/v1.0/event/callbacks/failedResults``  ``beginTime``, ``endTime`` (ms) → ``{failedList: [{callBackData,
                                           callBackTag, corpId, eventTime}], hasMore}`` (every failed event of the
                                           period: not consumed, and confirming does not remove them)
========================================== =========================================================================

Every route needs the ``Event.Subscription`` permission point (Zida's name; scope ``events``). The failed lists show
the failed deliveries of the token's app's ``callback`` and ``http`` subscriptions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.routing import Route

from zida.clock import now_ms
from zida.core.errors import Conflict, InvalidArgument, NotFound
from zida.core.events.delivery import Delivery, find_deliveries, mark_failures_read
from zida.core.events.subscriptions import (
    CALLBACK,
    DINGTALK_SCHEDULE,
    HTTP,
    Subscription,
    SubscriptionSpec,
    check_spec,
    credential_subscription,
    register_subscription,
    remove_subscription,
)
from zida.core.org.models import CorpRef
from zida.core.principals import Principal
from zida.core.records.values import brief
from zida.dialects.dingtalk.callback_crypto import CallbackCrypto, CryptoError, random_text
from zida.dialects.dingtalk.events import KNOWN_TAGS
from zida.dialects.dingtalk.http import Call, endpoint
from zida.dialects.dingtalk.oapi import json_field, oapi_endpoint
from zida.ids import is_decimal
from zida.outbound import OutboundClient, OutboundError

__all__ = ["HttpCallbackChannel", "check_receiver", "check_tags", "owner_key", "routes"]

log = logging.getLogger("zida.events")

_FAILED_PAGE = 200
_CONFIRM_MAX = 100


def owner_key(kind: str, corp_id: str, client_id: str) -> str:
    """The ownerKey a subscription's messages carry: the corpId (``register_call_back``) or the appKey."""
    return corp_id if kind == CALLBACK else client_id


def check_tags(tags: Any, param: str = "call_back_tag") -> tuple[str, ...]:
    """A list of DingTalk event types (or ``*``), each one known."""
    if isinstance(tags, str):
        tags = [t for t in tags.split(",") if t]
    if not isinstance(tags, list) or not tags or not all(isinstance(t, str) for t in tags):
        raise InvalidArgument("{param} must be a non-empty list of event types", reason="event.bad_tags", param=param)
    unknown = [t for t in tags if t != "*" and t not in KNOWN_TAGS]
    if unknown:
        raise InvalidArgument(f"{{param}}: unknown event type {unknown[0]!r}", reason="event.bad_tags", param=param)
    return tuple(tags)


async def push(
    client: OutboundClient,
    url: str,
    crypto: CallbackCrypto,
    message: dict[str, Any],
    timeout: float,  # noqa: ASYNC109 (the client's deadline)
) -> str | None:
    """Push one message to ``url``; None when the receiver answered the encrypted ``success``, else what was wrong."""
    timestamp, nonce = str(now_ms()), random_text()
    encrypt = crypto.encrypt(orjson.dumps(message).decode())
    sign = crypto.sign(timestamp, nonce, encrypt)
    params = {"msg_signature": sign, "signature": sign, "timestamp": timestamp, "nonce": nonce}
    try:
        answer = await client.post_json(url, params, orjson.dumps({"encrypt": encrypt}), timeout)
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except OutboundError as exc:
        return f"request failed: {exc}"[:300]
    if answer.is_redirect:
        return f"the URL redirects (HTTP {answer.status}); redirects are not followed"
    if answer.status != 200:
        return f"http statusCode is:{answer.status}"
    try:
        reply = orjson.loads(answer.body)
        text = crypto.verify(
            str(reply.get("msg_signature", "")),
            str(reply.get("timeStamp", reply.get("timestamp", ""))),
            str(reply.get("nonce", "")),
            str(reply.get("encrypt", "")),
        )
    except (orjson.JSONDecodeError, AttributeError):
        return "the reply is not a JSON object with msg_signature, timeStamp, nonce and encrypt"
    except CryptoError as exc:
        return f"the reply does not check: {exc.message}"
    if text != "success":
        return f"the reply decrypts to {brief(text)}, not success"
    return None


class HttpCallbackChannel:
    """Delivers ``callback`` and ``http`` subscriptions' events by HTTP push (``zida.core.events.worker.Channel``)."""

    kinds = frozenset({CALLBACK, HTTP})

    def __init__(self, client: OutboundClient, timeout: float, per_subscription: int = 256) -> None:
        self.client = client
        self.timeout = timeout
        self.per_subscription = per_subscription
        self._crypto: dict[CallbackCrypto, CallbackCrypto] = {}

    def ready(self, subscription: Subscription) -> bool:
        return subscription.url is not None

    def capacity(self, subscription: Subscription) -> int:
        return self.per_subscription

    def lease_ms(self) -> int:
        return int(self.timeout * 1000) + 30_000

    async def send(self, subscription: Subscription, deliveries: Sequence[Delivery]) -> list[str | None]:
        assert subscription.url and subscription.token and subscription.aes_key
        crypto = CallbackCrypto(
            subscription.token,
            subscription.aes_key,
            owner_key(subscription.kind, subscription.corp_id, subscription.client_id),
        )
        crypto = self._crypto.setdefault(crypto, crypto)  # the key decoded and the cipher built once per receiver
        if len(self._crypto) > 1024:
            self._crypto.clear()
        return list(
            await asyncio.gather(
                *(push(self.client, subscription.url, crypto, d.payload, self.timeout) for d in deliveries)
            )
        )


async def check_receiver(
    client: OutboundClient | None,
    spec: SubscriptionSpec,
    owner: str,
    timeout: float,  # noqa: ASYNC109
) -> None:
    """Send ``check_url`` to a would-be subscription's URL: ``Conflict`` (71009) unless it answers ``success``.

    Over a connection of its own, closed after the answer: the URL is any a caller names (refused ones too), and
    the delivery pool keeping one socket per host named would let a client hold the server's descriptors."""
    assert spec.url and spec.token and spec.aes_key
    crypto = CallbackCrypto(spec.token, spec.aes_key, owner)
    own = OutboundClient(client.user_agent if client is not None else "Zida-Callback/1.0")
    try:
        error = await push(own, spec.url, crypto, {"EventType": "check_url"}, timeout)
    finally:
        await own.aclose()
    if error is not None:
        raise Conflict(f"the URL did not answer check_url with the encrypted success: {error}",
                       reason="event.check_url_failed", param="url")  # fmt: skip


def _corp(principal: Principal) -> CorpRef:
    return CorpRef(principal.corp_pk, principal.corp_id)


def _spec(call: Call) -> SubscriptionSpec:
    return check_spec(
        SubscriptionSpec(
            kind=CALLBACK,
            tags=check_tags(json_field(call, "call_back_tag")),
            url=call.text("url", "body"),
            token=call.text("token", "body"),
            aes_key=call.text("aes_key", "body"),
            schedule=DINGTALK_SCHEDULE,
        )
    )


async def _register(call: Call, *, replace: bool) -> dict[str, Any]:
    assert call.principal is not None
    spec = _spec(call)
    zida = call.zida
    existing = await credential_subscription(
        zida.db, zida.box, call.principal.corp_pk, call.principal.client_id, CALLBACK
    )
    if existing is not None and not replace:
        raise Conflict("this app already registered a callback: use update_call_back",
                       reason="event.subscription_exists")  # fmt: skip
    if existing is None and replace:  # before check_url: nothing is sent for a call that cannot succeed
        raise NotFound("this app has no callback registered", reason="event.subscription_not_found")
    owner = owner_key(CALLBACK, call.principal.corp_id, call.principal.client_id)
    await check_receiver(zida.http_client, spec, owner, zida.settings.callback_timeout_seconds)
    await register_subscription(
        zida.db, zida.box, _corp(call.principal), call.principal.client_id, spec, replace=replace,
        actor=f"credential:{call.principal.client_id}",
    )  # fmt: skip
    zida.wake_events()
    return {}


@oapi_endpoint("Event.Subscription", "POST")
async def register_call_back(call: Call) -> dict[str, Any]:
    """Register the app's callback (``check_url`` first; 71006 when it has one, 71009 when the URL fails)."""
    return await _register(call, replace=False)


@oapi_endpoint("Event.Subscription", "POST")
async def update_call_back(call: Call) -> dict[str, Any]:
    """Replace the app's callback (``check_url`` first)."""
    return await _register(call, replace=True)


async def _callback(call: Call, kind: str = CALLBACK) -> Subscription:
    assert call.principal is not None
    found = await credential_subscription(
        call.zida.db, call.zida.box, call.principal.corp_pk, call.principal.client_id, kind
    )
    if found is None:
        raise NotFound("this app has no callback registered", reason="event.subscription_not_found")
    return found


@oapi_endpoint("Event.Subscription", "GET")
async def get_call_back(call: Call) -> dict[str, Any]:
    """The app's callback registration."""
    found = await _callback(call)
    return {"call_back_tag": list(found.tags), "token": found.token, "aes_key": found.aes_key, "url": found.url}


@oapi_endpoint("Event.Subscription", "GET")
async def delete_call_back(call: Call) -> dict[str, Any]:
    """Delete the app's callback registration."""
    assert call.principal is not None
    removed = await remove_subscription(
        call.zida.db, _corp(call.principal), call.principal.client_id, CALLBACK,
        actor=f"credential:{call.principal.client_id}",
    )  # fmt: skip
    if not removed:
        raise NotFound("this app has no callback registered", reason="event.subscription_not_found")
    return {}


async def _http_subscriptions(call: Call) -> list[int]:
    """Ids of the token's app's HTTP subscriptions (legacy callback and event subscription)."""
    assert call.principal is not None
    pks = []
    for kind in (CALLBACK, HTTP):
        found = await credential_subscription(
            call.zida.db, call.zida.box, call.principal.corp_pk, call.principal.client_id, kind
        )
        if found is not None:
            pks.append(found.pk)
    return pks


def _data_key(tag: str) -> str:
    if tag.startswith("bpms_"):
        return "bpmsCallBackData"
    return "callbackData"


def _failed_item(delivery: Delivery, corp_id: str) -> dict[str, Any]:
    """One entry of ``get_call_back_failed_result``: the data under a key named after the tag."""
    payload = delivery.payload
    inner: dict[str, Any] = {"corpid": corp_id}
    if delivery.tag.startswith("user_"):
        inner["userid"] = payload.get("UserId", payload.get("userId", []))
    elif delivery.tag.startswith("org_dept_"):
        inner["deptid"] = payload.get("DeptId", payload.get("deptId", []))
    else:
        inner[_data_key(delivery.tag)] = payload
    return {"call_back_tag": delivery.tag, "event_time": delivery.event_time, delivery.tag: inner}


@oapi_endpoint("Event.Subscription", "GET")
async def get_call_back_failed_result(call: Call) -> dict[str, Any]:
    """Up to 200 failed events, oldest first; each is returned by one call only (reading consumes them)."""
    assert call.principal is not None
    subs = await _http_subscriptions(call)
    async with call.zida.db.transaction() as tx:
        found = await find_deliveries(tx, subs, limit=_FAILED_PAGE + 1, unread_only=True)
        page = found[:_FAILED_PAGE]
        await mark_failures_read(tx, subs, [d.pk for d in page])
    return {
        "has_more": len(found) > _FAILED_PAGE,
        "failed_list": [_failed_item(d, call.principal.corp_id) for d in page],
    }


def _failrecord_request(call: Call) -> dict[str, Any]:
    req = json_field(call, "req")
    if req is None:
        return {}
    if not isinstance(req, dict):
        raise InvalidArgument("{param} must be an object", reason="argument.invalid", param="req")
    return req


def _int(value: Any, name: str, default: int, maximum: int) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, str) and is_decimal(value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise InvalidArgument(f"{{param}} must be a whole number from 0 to {maximum}", reason="argument.invalid",
                              param=name)  # fmt: skip
    return value


@oapi_endpoint("Event.Subscription", "POST")
async def failrecord_list(call: Call) -> dict[str, Any]:
    """Failed events not yet confirmed, oldest first (``req.cursor``: the last id seen, ``req.size`` ≤ 200)."""
    assert call.principal is not None
    req = _failrecord_request(call)
    size = _int(req.get("size"), "size", _FAILED_PAGE, _FAILED_PAGE) or _FAILED_PAGE
    cursor = _int(req.get("cursor"), "cursor", 0, 2**62)
    found = await find_deliveries(call.zida.db, await _http_subscriptions(call), limit=size + 1, unread_only=True,
                                    after_pk=cursor)  # fmt: skip
    page = found[:size]
    return {
        "has_more": len(found) > size,
        "failed_list": [
            {
                "id": d.pk,
                "call_back_tag": d.tag,
                "call_back_data": orjson.dumps(d.payload).decode(),
                "corpid": call.principal.corp_id,
                "event_time": d.event_time,
            }
            for d in page
        ],
    }


@oapi_endpoint("Event.Subscription", "POST")
async def failrecord_confirm(call: Call) -> dict[str, Any]:
    """Confirm failed events (up to 100 ids): they leave the oapi failed lists (the v1.0 list is a history by time
    and keeps them); returns the ids confirmed."""
    ids = json_field(call, "id_list")
    if isinstance(ids, str | int):
        ids = [i for i in str(ids).split(",") if i]
    if not isinstance(ids, list) or not ids or len(ids) > _CONFIRM_MAX:
        raise InvalidArgument(
            f"{{param}} must list 1 to {_CONFIRM_MAX} ids", reason="argument.invalid", param="id_list"
        )
    if any(i is None or i == "" for i in ids):
        raise InvalidArgument("{param} must list ids, not null or empty ones", reason="argument.invalid",
                              param="id_list")  # fmt: skip
    pks = [_int(i, "id_list", 0, 2**62) for i in ids]
    subs = await _http_subscriptions(call)
    async with call.zida.db.transaction() as tx:
        confirmed = await mark_failures_read(tx, subs, pks)
    return {"confirm_list": confirmed}


@endpoint("Event.Subscription")
async def failed_results(call: Call) -> dict[str, Any]:
    """v1.0 failed events between ``beginTime`` and ``endTime`` (ms), oldest first, up to 200: every failed event of
    the period, whether or not the oapi lists consumed or confirmed it (a history by time, not a queue)."""
    assert call.principal is not None
    begin = call.integer("beginTime", 0, minimum=0, maximum=2**53)
    end = call.integer("endTime", 2**53, minimum=0, maximum=2**53)
    subs = await _http_subscriptions(call)
    found = await find_deliveries(call.zida.db, subs, limit=_FAILED_PAGE + 1, begin=begin, end=end)
    page = found[:_FAILED_PAGE]
    return {
        "failedList": [
            {
                "callBackData": orjson.dumps(d.payload).decode(),
                "callBackTag": d.tag,
                "corpId": call.principal.corp_id,
                "eventTime": d.event_time,
            }
            for d in page
        ],
        "hasMore": len(found) > _FAILED_PAGE,
    }


def routes() -> list[Route]:
    """The oapi callback routes (``oapi.mount``)."""
    both = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    return [
        Route("/call_back/register_call_back", register_call_back, methods=both),
        Route("/call_back/update_call_back", update_call_back, methods=both),
        Route("/call_back/get_call_back", get_call_back, methods=both),
        Route("/call_back/delete_call_back", delete_call_back, methods=both),
        Route("/call_back/get_call_back_failed_result", get_call_back_failed_result, methods=both),
        Route("/topapi/callback/failrecord/list", failrecord_list, methods=both),
        Route("/topapi/callback/failrecord/confirm", failrecord_confirm, methods=both),
    ]


def v1_routes() -> list[Route]:
    """The v1.0 route of the failed list (api.dingtalk.com's mount)."""
    return [Route("/v1.0/event/callbacks/failedResults", failed_results, methods=["GET"])]
