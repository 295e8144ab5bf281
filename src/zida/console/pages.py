"""Signing in and out, the inbox (to do, done, submitted, CC'd, notifications) and the list of forms to fill."""

from __future__ import annotations

import secrets

from starlette.responses import Response

from zida.console.common import PAGE_SIZE, Pager, moment, names_of, page_number
from zida.console.notifications import notices, unread
from zida.console.web import (
    CONSOLE,
    CSRF_COOKIE,
    REFRESH_COOKIE,
    SESSION_COOKIE,
    Ctx,
    console_page,
    redirect,
    render,
    signed_in_already,
)
from zida.core.apps.queries import corp_apps
from zida.core.errors import InvalidArgument, RateLimited, Unauthenticated
from zida.core.org.repository import find_corp, only_corp
from zida.core.records.filters import Page
from zida.core.workflow.models import InboxQuery
from zida.core.workflow.queries import user_copies, user_submissions, user_tasks

__all__ = ["apps", "home", "inbox", "root", "sign_in", "sign_out"]

TABS = ("todo", "done", "submitted", "cc", "notifications")


@console_page(signed_in=False)
async def root(ctx: Ctx) -> Response:
    """``/`` and ``/console``: to the console."""
    return redirect(f"{CONSOLE}/")


@console_page()
async def home(ctx: Ctx) -> Response:
    """The console's start: the inbox."""
    return redirect(f"{CONSOLE}/inbox")


def _next(target: str) -> str:
    """Where to go after signing in: a console page, nowhere else (an open redirect would help phishing)."""
    if target.startswith(CONSOLE + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{CONSOLE}/inbox"


@console_page(signed_in=False)
async def sign_in(ctx: Ctx) -> Response:
    """The sign-in page (GET) and signing in (POST): username and password of an org user, an org id when the
    server has several organizations."""
    single = await only_corp(ctx.zida.db)
    query = ctx.request.query_params
    values = {
        "username": ctx.form.get("username"),
        "corp": ctx.form.get("corp") or query.get("corp", ""),
        "next": ctx.form.get("next") or query.get("next", ""),
    }

    def page(status: int, error: str | None = None) -> Response:
        return render(ctx, "signin.html", status, values=values, ask_corp=single is None, error=error)

    if ctx.request.method == "GET" and await signed_in_already(ctx):
        return redirect(_next(values["next"]))

    if ctx.request.method != "POST":
        return page(200)
    corp = await find_corp(ctx.zida.db, values["corp"]) if values["corp"] else single
    if corp is None:
        return page(400, ctx.t("signin.no_corp"))
    username = values["username"].strip()
    try:
        signed = await ctx.zida.sessions.sign_in(corp.pk, username, ctx.form.get("password"), client_id="console")
    except RateLimited:
        return page(429, ctx.t("signin.locked"))
    except Unauthenticated:
        return page(401, ctx.t("signin.failed"))
    except InvalidArgument:
        return page(400, ctx.t("signin.failed"))
    ttl = ctx.zida.settings.refresh_ttl_seconds
    ctx.set_cookie(SESSION_COOKIE, signed.access_token, ttl)
    ctx.set_cookie(REFRESH_COOKIE, f"{corp.pk}:{signed.refresh_token}", ttl)
    ctx.set_cookie(CSRF_COOKIE, secrets.token_urlsafe(32), None)  # a new CSRF secret for the new session
    return redirect(_next(values["next"]))


@console_page()
async def sign_out(ctx: Ctx) -> Response:
    """End the session (POST) and forget its cookies. A session renewed by this very request (its access token had
    expired) is ended by its new token, and the new tokens are never sent."""
    renewed = [value for name, value, _ in ctx.cookies if name == SESSION_COOKIE]
    ctx.cookies[:] = [c for c in ctx.cookies if c[0] not in (SESSION_COOKIE, REFRESH_COOKIE)]
    sent = ctx.request.cookies.get(SESSION_COOKIE, "")
    token = renewed[-1] if renewed else sent
    if token:
        await ctx.zida.sessions.sign_out(token)
    for name in (SESSION_COOKIE, REFRESH_COOKIE):
        ctx.set_cookie(name, "", 0)
    return redirect(f"{CONSOLE}/signin")


@console_page()
async def inbox(ctx: Ctx) -> Response:
    """The approvals of the signed-in user: to do, done, submitted and CC'd (a count on each tab), newest first, and
    his work notifications (the count: unread ones)."""
    tab = ctx.request.query_params.get("tab", "todo")
    if tab not in TABS:
        raise InvalidArgument(f"tab must be one of {', '.join(TABS)}", reason="argument.invalid", param="tab")
    number = page_number(ctx)
    db, principal = ctx.zida.db, ctx.principal
    assert principal is not None

    def query(tab_name: str) -> InboxQuery:
        return InboxQuery(page=Page(number, PAGE_SIZE) if tab_name == tab else Page(1, 1))

    todo_total, todo = await user_tasks(db, principal, query("todo"))
    done_total, done = await user_tasks(db, principal, query("done"), done=True)
    submitted_total, submitted = await user_submissions(db, principal, query("submitted"))
    cc_total, cc = await user_copies(db, principal, query("cc"))
    rows: list[dict[str, object]] = []
    if tab in ("todo", "done"):
        for task in todo if tab == "todo" else done:
            rows.append(
                {
                    "id": task.instance_id,
                    "title": task.title,
                    "originator": task.originator_user_id,
                    "status": task.instance_status,
                    "result": task.result,
                    "at": moment(ctx, task.finished_at if tab == "done" else task.active_at),
                }
            )
    elif tab == "submitted":
        for inst in submitted:
            rows.append(
                {
                    "id": inst.instance_id,
                    "title": inst.title,
                    "originator": inst.originator_user_id,
                    "status": inst.status,
                    "result": inst.result,
                    "at": moment(ctx, inst.created_at),
                }
            )
    else:
        for note in cc:
            rows.append(
                {
                    "id": note.instance.instance_id,
                    "title": note.instance.title,
                    "originator": note.instance.originator_user_id,
                    "status": note.instance.status,
                    "result": note.instance.result,
                    "at": moment(ctx, note.created_at),
                }
            )
    names = await names_of(ctx, [str(r["originator"]) for r in rows])
    counts = {"todo": todo_total, "done": done_total, "submitted": submitted_total, "cc": cc_total,
              "notifications": await unread(ctx)}  # fmt: skip
    pager = Pager(number, counts[tab], PAGE_SIZE, f"{CONSOLE}/inbox?tab={tab}&")
    shown, more = await notices(ctx) if tab == "notifications" else ([], None)
    return render(
        ctx, "inbox.html", tab=tab, tabs=TABS, counts=counts, rows=rows, names=names, pager=pager, notices=shown,
        more=more,
    )  # fmt: skip


@console_page()
async def apps(ctx: Ctx) -> Response:
    """The corp's apps and their forms: fill one in, or find its records."""
    listing = []
    for details in await corp_apps(ctx.zida.db, ctx.corp.pk):
        app = details.app
        name = app.name_en if ctx.lang == "en_US" and app.name_en else app.name
        listing.append({"name": name, "forms": [(f.form_uuid, f.title(ctx.lang), f.form_type) for f in details.forms]})
    return render(ctx, "apps.html", apps=listing)
