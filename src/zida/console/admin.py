"""Admin pages: the corp's app credentials — list, create and rotate (the secret is shown once, on the answer,
never again), revoke — and the event subscriptions of its credentials with their delivery state (pending,
delivered, failed deliveries still retained; a failing receiver's last error and next retry). The org directory's
pages are ``zida.console.org_admin``.

Who is an admin: Zida has no corp administrators of its own; a user who administers every app of the corp is
(``zida.core.org.queries.is_corp_admin``: he already reaches every record and approval, so a credential or a
password he sets reaches nothing more). The admin of some apps only is not. Every admin page and action refuses
anyone else (403), whatever the link or form they send.
"""

from __future__ import annotations

from starlette.responses import Response

from zida.clock import now_ms
from zida.console.common import moment
from zida.console.drawing import draw_process
from zida.console.fields import label_of
from zida.console.web import CONSOLE, Ctx, console_page, redirect, render, status_of
from zida.core.access import credentials
from zida.core.apps.queries import corp_apps
from zida.core.errors import InvalidArgument, NotFound, PermissionDenied, ZidaError
from zida.core.events.delivery import FAILED, delivery_counts, find_deliveries, redeliver
from zida.core.events.subscriptions import Subscription, get_subscription, list_subscriptions
from zida.core.principals import Scope
from zida.core.workflow.definitions import load_definition
from zida.ids import is_decimal

__all__ = [
    "actor_of",
    "admin_only",
    "apps_page",
    "credentials_page",
    "failed_deliveries",
    "redeliver_failed",
    "redeliver_one",
    "revoke",
    "rotate",
    "subscriptions_page",
]

SCOPES = tuple(s.value for s in Scope)


def admin_only(ctx: Ctx) -> None:
    """Refuse (403) anyone but an admin of the corp."""
    if not ctx.is_admin:
        raise PermissionDenied(
            f"user {ctx.user_id} is not an administrator of this organization", reason="permission.denied"
        )


def actor_of(ctx: Ctx) -> str:
    """The actor an admin page's change is recorded with (the audit log's ``user:<id>``)."""
    return f"user:{ctx.user_id}"


def _rate_limit(raw: str) -> int | None:
    text = raw.strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit():
        raise InvalidArgument("the rate limit must be a whole number", reason="argument.invalid", param="rate_limit")
    return credentials.check_rate_limit(int(text))


@console_page()
async def credentials_page(ctx: Ctx) -> Response:
    """The credentials (GET) and creating one (POST)."""
    return await _credentials(ctx)


async def _credentials(ctx: Ctx, rotated: credentials.IssuedSecret | None = None) -> Response:
    admin_only(ctx)
    issued = None
    error = None
    status = 200
    entered = {"client_id": "", "rate_limit": "", "scopes": ["*"]}
    if ctx.request.method == "POST" and rotated is None:
        scopes = ctx.form.all("scopes")
        entered = {
            "client_id": ctx.form.get("client_id").strip(),
            "rate_limit": ctx.form.get("rate_limit"),
            "scopes": scopes,
        }
        try:
            if not scopes:
                raise InvalidArgument("choose at least one scope", reason="argument.missing", param="scopes")
            issued = await credentials.create_credential(
                ctx.zida.db,
                ctx.corp,
                scopes,
                actor=actor_of(ctx),
                client_id=str(entered["client_id"]) or None,
                rate_limit=_rate_limit(str(entered["rate_limit"])),
            )
            status = 201
        except ZidaError as exc:
            error, status = exc.message, status_of(exc)
    listed = await credentials.list_credentials(ctx.zida.db, ctx.corp.pk)
    return render(
        ctx,
        "credentials.html",
        status,
        credentials=listed,
        scopes=SCOPES,
        issued=issued,
        rotated=rotated,
        error=error,
        entered=entered,
        revoked=ctx.request.query_params.get("revoked", ""),
    )


@console_page()
async def revoke(ctx: Ctx) -> Response:
    """Revoke a credential (POST): its tokens stop working at once."""
    admin_only(ctx)
    client_id = ctx.request.path_params["client_id"]
    await credentials.revoke_credential(ctx.zida.db, ctx.corp, client_id, actor=actor_of(ctx))
    return redirect(f"{CONSOLE}/admin/credentials?revoked=1")


@console_page()
async def rotate(ctx: Ctx) -> Response:
    """Give a credential a new secret (POST), shown once on the answer: the old secret and its tokens stop working."""
    admin_only(ctx)
    client_id = ctx.request.path_params["client_id"]
    issued = await credentials.rotate_credential(ctx.zida.db, ctx.corp, client_id, actor=actor_of(ctx))
    return await _credentials(ctx, rotated=issued)


@console_page()
async def subscriptions_page(ctx: Ctx) -> Response:
    """The event subscriptions of the corp's credentials, with their delivery state."""
    admin_only(ctx)
    db = ctx.zida.db
    subscriptions = await list_subscriptions(db, ctx.zida.box, ctx.corp.pk)
    counts = await delivery_counts(db, [s.pk for s in subscriptions])
    rows = [
        {
            "id": s.pk,
            "client_id": s.client_id,
            "kind": s.kind,
            "url": s.url or "",
            "tags": ", ".join(s.tags),
            "counts": counts.get(s.pk, {}),
            "failing": s.failing_since is not None,
            "failures": s.failures,
            "last_error": s.last_error or "",
            "retry_at": moment(ctx, s.retry_at),
            "last_delivered": moment(ctx, s.last_delivered_at),
        }
        for s in subscriptions
    ]
    redelivered = ctx.request.query_params.get("redelivered", "")
    shown = int(redelivered) if is_decimal(redelivered, 9) else None
    return render(ctx, "admin_subscriptions.html", subscriptions=rows, redelivered=shown)


def _number(raw: str) -> int | None:
    """A path's or query's id, or None when it is not one."""
    return int(raw) if is_decimal(raw, 18) else None


async def _subscription(ctx: Ctx) -> Subscription:
    """The corp's subscription the path names (404 otherwise: another corp's is not there)."""
    raw = ctx.request.path_params["subscription_id"]
    number = _number(raw)
    if number is None:
        raise NotFound(f"event subscription {raw} does not exist", reason="event.subscription_not_found")
    return await get_subscription(ctx.zida.db, ctx.zida.box, ctx.corp.pk, number)


@console_page()
async def redeliver_failed(ctx: Ctx) -> Response:
    """Send every failed delivery of one of the corp's subscriptions again (POST): the core's ``redeliver``, the
    admin API's ``/redeliver`` without ``ids``; the delivery worker is woken at once."""
    admin_only(ctx)
    found = await _subscription(ctx)
    count = await redeliver(ctx.zida.db, found, None, now_ms())
    ctx.zida.wake_events()
    return redirect(f"{CONSOLE}/admin/subscriptions?redelivered={count}")


FAILED_PAGE = 50


@console_page()
async def failed_deliveries(ctx: Ctx) -> Response:
    """A subscription's failed deliveries still retained, oldest first, 50 a page (``after``: the last id shown):
    each event's type, object, time, attempts and last error, with a button that sends that one again."""
    admin_only(ctx)
    found = await _subscription(ctx)
    after = _number(ctx.request.query_params.get("after", "0")) or 0
    rows = await find_deliveries(ctx.zida.db, [found.pk], limit=FAILED_PAGE + 1, after_pk=after, status=FAILED)
    shown = [
        {
            "id": d.pk,
            "tag": d.tag,
            "object": d.object_key,
            "at": moment(ctx, d.event_time),
            "attempts": d.attempts,
            "last_error": d.last_error or "",
        }
        for d in rows[:FAILED_PAGE]
    ]
    more = rows[FAILED_PAGE - 1].pk if len(rows) > FAILED_PAGE else None
    redelivered = _number(ctx.request.query_params.get("redelivered", ""))
    return render(
        ctx,
        "admin_failed.html",
        subscription={"id": found.pk, "client_id": found.client_id, "kind": found.kind, "url": found.url or ""},
        deliveries=shown,
        more=more,
        redelivered=redelivered,
    )


@console_page()
async def redeliver_one(ctx: Ctx) -> Response:
    """Send one failed delivery of a subscription again (POST): the core's ``redeliver`` with its id, the admin API's
    ``/redeliver`` with ``ids``. A delivery that is not a failed one of this subscription is not found."""
    admin_only(ctx)
    found = await _subscription(ctx)
    raw = ctx.request.path_params["delivery_id"]
    number = _number(raw)
    count = 0 if number is None else await redeliver(ctx.zida.db, found, [number], now_ms())
    if not count:
        raise NotFound(
            f"delivery {raw} is not a failed delivery of event subscription {found.pk}",
            reason="event.delivery_not_found",
        )
    ctx.zida.wake_events()
    return redirect(f"{CONSOLE}/admin/subscriptions/{found.pk}/failed?redelivered={count}")


@console_page()
async def apps_page(ctx: Ctx) -> Response:
    """The corp's apps: their admins, their forms with their fields, and a drawing of each process
    (``zida.console.drawing``)."""
    admin_only(ctx)
    listing = []
    for details in await corp_apps(ctx.zida.db, ctx.corp.pk):
        app = details.app
        forms = []
        for form in details.forms:
            drawing = None
            if form.form_type == "process":
                definition = await load_definition(ctx.zida.db, form.pk, form.version)
                drawing = draw_process(definition, ctx.t, ctx.lang)
            fields = [
                {"id": f.field_id, "label": label_of(f, ctx.lang), "component": f.component, "required": f.required,
                 "indexed": f.searchable, "children": [(c.field_id, label_of(c, ctx.lang), c.component)
                                                       for c in f.children]}
                for f in form.fields
            ]  # fmt: skip
            forms.append({"form": form, "title": form.title(ctx.lang), "fields": fields, "drawing": drawing})
        name = app.name_en if ctx.lang == "en_US" and app.name_en else app.name
        listing.append({"name": name, "app_type": app.app_type, "admins": details.admins, "forms": forms})
    return render(ctx, "admin_apps.html", apps=listing)
