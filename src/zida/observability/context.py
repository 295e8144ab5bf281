"""The request being served in this task: its id, and who called (for the access log line).

The request observer (``zida.observability.http``) opens a ``RequestContext`` before a dialect sees the request;
the dialects' ``new_request_id`` answers with its id, so the id in the body (DingTalk's ``requestid``, oapi's
``request_id``, WeDa's ``RequestId``/``requestId``), in the dialect's header and in ``x-request-id`` is the one the
log line carries. The token service notes the caller (corp and client id, never a secret) once it knows it. A
context variable: each request runs in a task of its own, and a thread a statement runs on inherits it.
"""

from __future__ import annotations

import os
from contextvars import ContextVar, Token

__all__ = ["RequestContext", "begin_request", "current_request_id", "end_request", "make_request_id", "note_caller"]


class RequestContext:
    """One request: its id, and its caller's corp and credential (client id / app key) once known."""

    __slots__ = ("corp", "credential", "request_id")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.corp: str | None = None
        self.credential: str | None = None


_CURRENT: ContextVar[RequestContext | None] = ContextVar("zida_request", default=None)


def make_request_id() -> str:
    """A new request id (32 hex characters, upper case: the form every dialect already sent)."""
    return os.urandom(16).hex().upper()


def begin_request() -> tuple[RequestContext, Token[RequestContext | None]]:
    """Open the context of a request served in this task (``end_request`` with the token closes it)."""
    context = RequestContext(make_request_id())
    return context, _CURRENT.set(context)


def end_request(token: Token[RequestContext | None]) -> None:
    """Close the context ``begin_request`` opened."""
    _CURRENT.reset(token)


def current_request_id() -> str | None:
    """The id of the request this task serves (None outside a request)."""
    context = _CURRENT.get()
    return None if context is None else context.request_id


def note_caller(corp_id: str | None, client_id: str | None) -> None:
    """Record who makes the current request (a corp id and a client id; never a secret) for its log line."""
    context = _CURRENT.get()
    if context is not None:
        if corp_id is not None:
            context.corp = corp_id
        context.credential = client_id
