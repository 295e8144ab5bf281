"""Admin API for event subscriptions: where the corp's events go, how delivery is going, and redelivery.

A subscription is an app credential's HTTP callback (``kind`` ``callback``: DingTalk's ``register_call_back``
format, owner key the corpId; ``http``: the event-subscription format, owner key the appKey) or its Stream
subscription (``stream``; made by the Stream gateway too). Creating or changing an HTTP one sends ``check_url`` to
its URL first and refuses (409 ``event.check_url_failed``) unless the receiver answers the encrypted ``success``.
Subscriptions made here retry on the ``persistent`` schedule unless ``schedule: dingtalk`` is asked for. Tokens and
aes_keys are never shown.

====== ============================================== ===============================================================
method path                                           body → effect
====== ============================================== ===============================================================
GET    /admin/v1/event-subscriptions                  → ``{subscriptions: [view]}``: each with its delivery state
                                                      (``deliveries: {pending, delivered, failed}``, ``failingSince``,
                                                      ``retryAt``, ``lastError``, ``lastDeliveredAt``)
POST   /admin/v1/event-subscriptions                  ``{appKey, kind, tags, url?, token?, aesKey?, schedule?}`` → 201
GET    /admin/v1/event-subscriptions/{id}             → the view
PATCH  /admin/v1/event-subscriptions/{id}             ``{tags?, url?, token?, aesKey?, schedule?}`` → the view
DELETE /admin/v1/event-subscriptions/{id}             → ``{id, deleted: true}`` (its deliveries go with it)
GET    /admin/v1/event-subscriptions/{id}/deliveries  ``?status=failed|pending|delivered&after=&limit=`` →
                                                      ``{deliveries: [{id, outboxId, tag, status, attempts, nextAt,
                                                      lastError, eventTime, finishedAt, payload}]}``
POST   /admin/v1/event-subscriptions/{id}/redeliver   ``{ids?}`` (absent: every failed one) → ``{redelivered: n}``
====== ============================================== ===============================================================
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import Route

from zida.clock import now_ms
from zida.core.access.credentials import get_credential
from zida.core.errors import InvalidArgument, NotFound
from zida.core.events.delivery import DELIVERED, FAILED, PENDING, delivery_counts, find_deliveries, redeliver
from zida.core.events.subscriptions import (
    STREAM,
    Subscription,
    SubscriptionSpec,
    check_spec,
    get_subscription,
    list_subscriptions,
    register_subscription,
    remove_subscription,
)
from zida.dialects.admin.errors import parse_body
from zida.dialects.admin.http import AdminCall, admin_endpoint, respond
from zida.dialects.admin.org import actor_of, corp_of, limit_of
from zida.dialects.dingtalk.callbacks import check_receiver, check_tags, owner_key

__all__ = ["routes"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Create(_Body):
    appKey: str = Field(min_length=1, max_length=128)
    kind: Literal["callback", "http", "stream"] = "http"
    tags: list[str] = Field(min_length=1)
    url: str | None = None
    token: str | None = None
    aesKey: str | None = None
    schedule: Literal["dingtalk", "persistent"] = "persistent"


class _Change(_Body):
    tags: list[str] | None = Field(default=None, min_length=1)
    url: str | None = None
    token: str | None = None
    aesKey: str | None = None
    schedule: Literal["dingtalk", "persistent"] | None = None


class _Redeliver(_Body):
    ids: list[int] | None = Field(default=None, max_length=1000)


def _view(sub: Subscription, counts: dict[str, int]) -> dict[str, Any]:
    """A subscription as the admin API shows it (never its token or aes_key)."""
    return {
        "id": sub.pk,
        "appKey": sub.client_id,
        "kind": sub.kind,
        "url": sub.url,
        "tags": list(sub.tags),
        "schedule": sub.schedule,
        "createdAt": sub.created_at,
        "updatedAt": sub.updated_at,
        "failingSince": sub.failing_since,
        "retryAt": sub.retry_at,
        "lastError": sub.last_error,
        "lastDeliveredAt": sub.last_delivered_at,
        "deliveries": counts,
    }


async def _one(call: AdminCall) -> Subscription:
    pk = call.number("id", call.path["id"], minimum=1)
    return await get_subscription(call.zida.db, call.zida.box, call.principal.corp_pk, pk)


async def _shown(call: AdminCall, pk: int) -> dict[str, Any]:
    found = await get_subscription(call.zida.db, call.zida.box, call.principal.corp_pk, pk)
    return _view(found, (await delivery_counts(call.zida.db, [pk]))[pk])


async def _save(call: AdminCall, client_id: str, spec: SubscriptionSpec, *, replace: bool, check: bool) -> int:
    spec = check_spec(SubscriptionSpec(spec.kind, check_tags(list(spec.tags), "tags"), spec.url, spec.token,
                                       spec.aes_key, spec.schedule))  # fmt: skip
    if await get_credential(call.zida.db, call.principal.corp_pk, client_id) is None:
        raise NotFound(f"credential {client_id} does not exist", reason="credential.not_found", param="client_id")
    if check and spec.kind != STREAM:
        owner = owner_key(spec.kind, call.principal.corp_id, client_id)
        await check_receiver(call.zida.http_client, spec, owner, call.zida.settings.callback_timeout_seconds)
    pk = await register_subscription(
        call.zida.db, call.zida.box, corp_of(call), client_id, spec, replace=replace, actor=actor_of(call)
    )
    call.zida.wake_events()
    return pk


@admin_endpoint
async def list_event_subscriptions(call: AdminCall) -> dict[str, Any]:
    """The corp's subscriptions with their delivery state."""
    subs = await list_subscriptions(call.zida.db, call.zida.box, call.principal.corp_pk)
    counts = await delivery_counts(call.zida.db, [s.pk for s in subs])
    return {"subscriptions": [_view(s, counts[s.pk]) for s in subs]}


@admin_endpoint
async def create_event_subscription(call: AdminCall) -> Any:
    """Create a credential's subscription (HTTP ones answer check_url first)."""
    body = parse_body(_Create, call.body)
    spec = SubscriptionSpec(body.kind, tuple(body.tags), body.url, body.token, body.aesKey, body.schedule)
    pk = await _save(call, body.appKey, spec, replace=False, check=True)
    return respond(await _shown(call, pk), 201)


@admin_endpoint
async def get_event_subscription(call: AdminCall) -> dict[str, Any]:
    """One subscription."""
    found = await _one(call)
    return await _shown(call, found.pk)


@admin_endpoint
async def update_event_subscription(call: AdminCall) -> dict[str, Any]:
    """Change a subscription (a new URL, token or aes_key is checked with check_url first)."""
    body = parse_body(_Change, call.body)
    found = await _one(call)
    spec = SubscriptionSpec(
        found.kind,
        tuple(body.tags) if body.tags is not None else found.tags,
        body.url if body.url is not None else found.url,
        body.token if body.token is not None else found.token,
        body.aesKey if body.aesKey is not None else found.aes_key,
        body.schedule or found.schedule,
    )
    receiver_changed = (spec.url, spec.token, spec.aes_key) != (found.url, found.token, found.aes_key)
    await _save(call, found.client_id, spec, replace=True, check=receiver_changed)
    return await _shown(call, found.pk)


@admin_endpoint
async def delete_event_subscription(call: AdminCall) -> dict[str, Any]:
    """Delete a subscription and its deliveries."""
    found = await _one(call)
    await remove_subscription(call.zida.db, corp_of(call), found.client_id, found.kind, actor=actor_of(call))
    return {"id": found.pk, "deleted": True}


@admin_endpoint
async def list_deliveries(call: AdminCall) -> dict[str, Any]:
    """A subscription's deliveries in one state, oldest first."""
    found = await _one(call)
    status = call.request.query_params.get("status", FAILED)
    if status not in (PENDING, DELIVERED, FAILED):
        raise InvalidArgument("status must be pending, delivered or failed", reason="argument.invalid", param="status")
    after = call.number("after", call.request.query_params.get("after", "0"))
    found_deliveries = await find_deliveries(
        call.zida.db, [found.pk], limit=limit_of(call), after_pk=after, status=status
    )
    return {
        "deliveries": [
            {
                "id": d.pk,
                "outboxId": d.event_id,
                "tag": d.tag,
                "status": d.status,
                "attempts": d.attempts,
                "nextAt": d.next_at,
                "lastError": d.last_error,
                "eventTime": d.event_time,
                "finishedAt": d.finished_at,
                "payload": d.payload,
            }
            for d in found_deliveries
        ]
    }


@admin_endpoint
async def redeliver_failed(call: AdminCall) -> dict[str, Any]:
    """Send failed deliveries again (all, or the listed ids)."""
    body = parse_body(_Redeliver, call.body)
    found = await _one(call)
    count = await redeliver(call.zida.db, found, body.ids, now_ms())
    call.zida.wake_events()
    return {"redelivered": count}


def routes() -> list[Route]:
    """Admin routes for event subscriptions."""
    base = "/admin/v1/event-subscriptions"
    return [
        Route(base, list_event_subscriptions, methods=["GET"]),
        Route(base, create_event_subscription, methods=["POST"]),
        Route(f"{base}/{{id}}", get_event_subscription, methods=["GET"]),
        Route(f"{base}/{{id}}", update_event_subscription, methods=["PATCH"]),
        Route(f"{base}/{{id}}", delete_event_subscription, methods=["DELETE"]),
        Route(f"{base}/{{id}}/deliveries", list_deliveries, methods=["GET"]),
        Route(f"{base}/{{id}}/redeliver", redeliver_failed, methods=["POST"]),
    ]
