"""The console's request layer: its mount, the signed-in user of a request, CSRF, forms, pages and error pages.

* **Session**: signing in opens a session of the core (``zida.core.access.sessions``, the one WeDa's sign-in
  opens); its access token travels in the ``zida_session`` cookie and its refresh token in ``zida_refresh``
  (``<corp pk>:<token>``), both ``HttpOnly``, ``SameSite=Lax``, ``Path=/console`` and ``Secure`` when the console is
  reached over HTTPS (the request's scheme or ``ZIDA_PUBLIC_URL``). An expired access token is renewed with the
  refresh token on the next page, so a long form survives the access token's lifetime (``ZIDA_SESSION_TTL_SECONDS``).
  Only a session's token is accepted: an app credential's access token in the cookie is refused.
* **CSRF**: every POST carries a token (form field ``csrf`` or header ``x-csrf-token``) that must equal the HMAC,
  keyed by the server key, of the browser's random ``zida_csrf`` cookie and the signed-in user (corp and user id: a
  renewed session keeps the forms already open valid); a new cookie is set at sign-in. Together with
  ``SameSite=Lax``, a page elsewhere can neither read nor forge it.
* **Headers**: a strict Content-Security-Policy (scripts and styles from the console only, no inline script, no
  framing), ``nosniff``, ``Referrer-Policy: same-origin``, and ``Cache-Control: no-store`` on every page.
* **Errors** are pages in the user's language with the core's message; a missing or ended session sends a GET to
  the sign-in page (and back after it), anything else answers 401.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import Message, Receive, Scope, Send

from zida.app_state import Zida
from zida.console.i18n import LANG_COOKIE, asked_language, language_of, translate
from zida.core.access.members import app_actor
from zida.core.errors import (
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    ZidaError,
)
from zida.core.org.models import CorpRef, User
from zida.core.org.queries import is_corp_admin
from zida.core.org.repository import find_users
from zida.core.principals import AppActor, Principal
from zida.dialects.http import DialectMount, check_url, new_request_id, read_limited, zida_of
from zida.ids import is_decimal

__all__ = [
    "CONSOLE",
    "CSRF_COOKIE",
    "REFRESH_COOKIE",
    "SESSION_COOKIE",
    "ConsoleMount",
    "Ctx",
    "Form",
    "console_page",
    "mount",
    "redirect",
    "render",
    "signed_in_already",
    "templates",
]

log = logging.getLogger("zida.console")

CONSOLE = "/console"
SESSION_COOKIE = "zida_session"
REFRESH_COOKIE = "zida_refresh"
CSRF_COOKIE = "zida_csrf"
_MAX_FORM_FIELDS = 5000
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none';"
    " base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

templates = jinja2.Environment(
    loader=jinja2.PackageLoader("zida.console", "templates"),
    autoescape=True,  # every value is escaped unless a template says otherwise (none does)
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class Form:
    """A submitted ``application/x-www-form-urlencoded`` form: each name with its values in order."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        self._by_name: dict[str, list[str]] = {}
        for name, value in pairs:
            self._by_name.setdefault(name, []).append(value)

    def get(self, name: str, default: str = "") -> str:
        """The first value of ``name``."""
        values = self._by_name.get(name)
        return values[0] if values else default

    def all(self, name: str) -> list[str]:
        """Every value of ``name``."""
        return list(self._by_name.get(name, ()))

    def names(self) -> list[str]:
        """The names, in the order they first appear."""
        return list(self._by_name)


@dataclass
class Ctx:
    """One console request: the server, the request, its language, its signed-in user and what the answer sets."""

    zida: Zida
    request: Request
    lang: str
    principal: Principal | None = None
    user: User | None = None
    is_admin: bool = False
    form: Form = field(default_factory=lambda: Form([]))
    cookies: list[tuple[str, str, int | None]] = field(default_factory=list)
    csrf_cookie: str = ""

    def t(self, key: str, **values: object) -> str:
        """A console text in the request's language."""
        return translate(key, self.lang, **values)

    @property
    def corp(self) -> CorpRef:
        """The signed-in user's corp."""
        assert self.principal is not None
        return CorpRef(self.principal.corp_pk, self.principal.corp_id)

    @property
    def user_id(self) -> str:
        """The signed-in user's id."""
        assert self.principal is not None and self.principal.user_id is not None
        return self.principal.user_id

    @property
    def csrf_token(self) -> str:
        """The token every POST form of this page carries."""
        subject = "" if self.principal is None else f"{self.principal.corp_pk}:{self.principal.user_id}"
        return csrf_token(self.zida, self.csrf_cookie, subject)

    async def actor(self, app_pk: int) -> AppActor:
        """The signed-in user inside one of the corp's apps (the subject of the access policy)."""
        return await app_actor(self.zida.db, self.corp.pk, app_pk, self.user_id)

    def set_cookie(self, name: str, value: str, max_age: int | None) -> None:
        """Set (``max_age`` 0: delete) a console cookie on the answer."""
        self.cookies.append((name, value, max_age))

    @property
    def secure(self) -> bool:
        """Whether cookies must be ``Secure`` (the console is reached over HTTPS)."""
        public = self.zida.settings.public_url or ""
        return self.request.url.scheme == "https" or public.startswith("https://")


def csrf_token(zida: Zida, cookie: str, subject: str) -> str:
    """The CSRF token of a browser's CSRF cookie and signed-in user (``subject``; "" before sign-in)."""
    key = hashlib.sha256(b"zida-console-csrf\x00" + zida.settings.secret_key.encode()).digest()
    return hmac.new(key, f"{cookie}|{subject}".encode(), hashlib.sha256).hexdigest()


def render(ctx: Ctx, template: str, code: int = 200, **values: Any) -> HTMLResponse:
    """A page from ``template`` with the request's language, user and CSRF token."""
    html = templates.get_template(template).render(
        t=ctx.t,
        lang=ctx.lang,
        user=ctx.user,
        is_admin=ctx.is_admin,
        csrf=ctx.csrf_token if ctx.csrf_cookie else "",
        path=ctx.request.url.path,
        console=CONSOLE,
        **values,
    )
    return HTMLResponse(html, status_code=code)


def redirect(url: str) -> RedirectResponse:
    """A 303 to ``url`` (after a POST: the browser GETs it)."""
    return RedirectResponse(url, status_code=303)


async def _read_form(request: Request, limit: int) -> Form:
    """The urlencoded form in the body (refused: another type, over ``limit`` bytes, not UTF-8, NUL characters)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise InvalidArgument("send the form as application/x-www-form-urlencoded", reason="request.bad_form")
    body = await read_limited(request, limit, "the form")
    try:
        text = body.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FORM_FIELDS, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise InvalidArgument("the form is not valid (UTF-8, at most 5000 fields)", reason="request.bad_form") from None
    if any("\x00" in name or "\x00" in value for name, value in pairs):
        raise InvalidArgument("the form contains a NUL character", reason="request.nul_character")
    return Form(pairs)


async def _session(ctx: Ctx) -> None:
    """Find the signed-in user (renewing an expired access token with the refresh token); raise when there is none."""
    zida, request = ctx.zida, ctx.request
    token = request.cookies.get(SESSION_COOKIE, "")
    try:
        principal = await zida.tokens.authenticate(token)
    except Unauthenticated as exc:
        principal = await _renewed(ctx, exc)
    if principal.kind != "session" or principal.user_id is None:
        raise Unauthenticated("the console takes a signed-in user's session", reason="auth.not_a_user")
    user = (await find_users(zida.db, principal.corp_pk, [principal.user_id])).get(principal.user_id)
    if user is None or not user.active:
        raise Unauthenticated("the signed-in user is no longer active", reason="auth.user_inactive")
    ctx.principal, ctx.user = principal, user
    ctx.is_admin = await is_corp_admin(zida.db, principal.corp_pk, user.user_id)


async def _renewed(ctx: Ctx, cause: Unauthenticated) -> Principal:
    corp, _, refresh = ctx.request.cookies.get(REFRESH_COOKIE, "").partition(":")
    if not refresh or not is_decimal(corp, 18):
        raise cause
    signed = await ctx.zida.sessions.renew(int(corp), refresh)
    ttl = ctx.zida.settings
    ctx.set_cookie(SESSION_COOKIE, signed.access_token, ttl.refresh_ttl_seconds)
    ctx.set_cookie(REFRESH_COOKIE, f"{corp}:{signed.refresh_token}", ttl.refresh_ttl_seconds)
    return await ctx.zida.tokens.authenticate(signed.access_token)


def _check_csrf(ctx: Ctx, sent: str) -> None:
    expected = ctx.csrf_token
    if not ctx.csrf_cookie or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PermissionDenied("the form's CSRF token is missing or wrong", reason="console.csrf")


_STATUS: tuple[tuple[type[ZidaError], int], ...] = (
    (InvalidArgument, 400),
    (Unauthenticated, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (RateLimited, 429),
)


def status_of(exc: ZidaError) -> int:
    """The HTTP status of a core error on a console page."""
    if exc.reason == "request.too_large":
        return 413
    return next((status for kind, status in _STATUS if isinstance(exc, kind)), 400)


def error_page(ctx: Ctx, exc: ZidaError) -> Response:
    """The page telling the user what went wrong (the core's message, a title in their language)."""
    status = status_of(exc)
    message = ctx.t("error.csrf") if exc.reason == "console.csrf" else exc.message
    return render(ctx, "error.html", status, status=status, title=ctx.t(f"error.{status}"), message=message)


def _sign_in_again(ctx: Ctx, *, clear: bool = True) -> Response:
    """To the sign-in page, and back here after it. ``clear`` False when the refresh token was spent already: most
    likely by a request of the same browser that renewed the session a moment before (two tabs, a picker's call
    during a page load) and whose answer sets the new cookies; clearing them here could sign the user out. The
    sign-in page sends a browser with a live session straight back."""
    target = ctx.request.url.path + (f"?{ctx.request.url.query}" if ctx.request.url.query else "")
    response = redirect(f"{CONSOLE}/signin?next={quote(target, safe='')}")
    if clear:
        ctx.set_cookie(SESSION_COOKIE, "", 0)
        ctx.set_cookie(REFRESH_COOKIE, "", 0)
    return response


async def signed_in_already(ctx: Ctx) -> bool:
    """Whether the browser's session cookie is a live session of a user (the sign-in page then sends it on)."""
    try:
        principal = await ctx.zida.tokens.authenticate(ctx.request.cookies.get(SESSION_COOKIE, ""))
    except Unauthenticated:
        return False
    return principal.kind == "session" and principal.user_id is not None


Handler = Callable[[Ctx], Awaitable[Response]]


def console_page(
    *, signed_in: bool = True, form: bool = True
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a console handler: language, session (``signed_in``), rate limit, CSRF and the form of a POST
    (``form`` False: the body is the handler's, the CSRF token comes in ``x-csrf-token``), errors as pages."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            zida = zida_of(request)
            ctx = Ctx(zida=zida, request=request, lang=language_of(request))
            ctx.csrf_cookie = request.cookies.get(CSRF_COOKIE, "")
            if len(ctx.csrf_cookie) != 43:  # secrets.token_urlsafe(32)
                ctx.csrf_cookie = secrets.token_urlsafe(32)
                ctx.set_cookie(CSRF_COOKIE, ctx.csrf_cookie, None)
            asked = asked_language(request)
            if asked is not None:
                ctx.set_cookie(LANG_COOKIE, asked, 365 * 86400)
            try:
                check_url(request)
                if signed_in:
                    await _session(ctx)
                await zida.rate_limit(request, ctx.principal)
                if request.method == "POST":
                    if form:
                        ctx.form = await _read_form(request, zida.settings.max_body_bytes)
                    _check_csrf(ctx, request.headers.get("x-csrf-token") or ctx.form.get("csrf"))
                response = await handler(ctx)
            except Unauthenticated as exc:
                if request.method == "GET" and exc.reason not in ("auth.too_many_failures",):
                    response = _sign_in_again(ctx, clear=exc.reason != "auth.bad_refresh_token")
                else:
                    response = error_page(ctx, exc)
            except ZidaError as exc:
                response = error_page(ctx, exc)
            except Exception:
                request_id = new_request_id()
                log.exception("unhandled error in %s %s (request %s)", request.method, request.url.path, request_id)
                response = render(
                    ctx, "error.html", 500, status=500, title=ctx.t("error.500"), message=f"request {request_id}"
                )
            for name, value, max_age in ctx.cookies:
                response.set_cookie(
                    name,
                    value,
                    max_age=max_age,
                    path=CONSOLE,
                    secure=ctx.secure,
                    httponly=name != LANG_COOKIE,
                    samesite="lax",
                )
            return response

        route.__name__ = handler.__name__
        route.__doc__ = handler.__doc__
        return route

    return wrap


class _Errors:
    """Errors outside a console handler (unknown console path, wrong method, a bug): plain pages."""

    def error(self, exc: ZidaError, request_id: str) -> Response:
        status = status_of(exc)
        return HTMLResponse(
            f"<!doctype html><title>{status}</title><p>{status} — <a href='{CONSOLE}/'>Zida</a></p>",
            status_code=status,
        )

    def unhandled(self, request_id: str) -> Response:
        return HTMLResponse(f"<!doctype html><title>500</title><p>500 — request {request_id}</p>", status_code=500)


_SECURITY_HEADERS: Mapping[bytes, bytes] = {
    b"content-security-policy": _CSP.encode(),
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"same-origin",
    b"x-frame-options": b"DENY",
}


class ConsoleMount(DialectMount):
    """The console's paths: ``/`` (a redirect), ``/console`` and everything under ``/console/``."""

    def serves(self, path: str) -> bool:
        """Whether ``path`` is the console's (no API path starts with ``/console``)."""
        return path in ("/", CONSOLE) or path.startswith(CONSOLE + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        static = scope["path"].startswith(f"{CONSOLE}/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _SECURITY_HEADERS]
                headers.extend(_SECURITY_HEADERS.items())
                if not static:
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, with_headers)


def mount(routes: list[Any]) -> ConsoleMount:
    """The console's mount over its routes."""
    return ConsoleMount("console", (CONSOLE,), routes, _Errors())
