"""DingTalk's v1.0 contacts API (``contact_1_0``, dingtalk-platform.md §3.4) over the org directory.

Header token ``x-acs-dingtalk-access-token``, permission point ``Contact.User.Read``, answers as api.dingtalk.com
(``zida.dialects.dingtalk.http``). Members are the corp's active users (``zida.core.org.queries``).

================================================ ===================================================================
route                                            answer
================================================ ===================================================================
POST ``/v1.0/contact/users/search``              ``{queryWord, offset, size, fullMatchField}`` → ``{hasMore,
                                                 totalCount, list: [userId…]}``: names containing ``queryWord``
                                                 (``fullMatchField`` 1: equal to it), in entry order
POST ``/v1.0/contact/departments/search``        ``{queryWord, offset, size}`` → ``{hasMore, totalCount, list:
                                                 [deptId…]}``: names containing it, by id
GET  ``/v1.0/contact/users/batch/get``           ``userIdList`` (JSON array, ≤ 100) → ``{userList: [{userid,
                                                 unionid, name, mobile, senior}], unauthorizedUserIdList:
                                                 []}``; unknown ids are left out
GET  ``/v1.0/contact/users/{unionId}``           ``{nick, unionId, mobile, email, visitor}`` (Zida keeps no country
                                                 code: no ``stateCode``)
GET  ``/v1.0/contact/user/getByDingTalkId``      ``dingtalkId`` → ``{userId}``
================================================ ===================================================================

Choices (tested):

* ``users/{unionId}`` needs a *user* token on DingTalk (the signed-in user's own profile). Zida serves it to app
  tokens holding ``Contact.User.Read`` for any member's union id of the token's corp; ``me`` names the user a
  user-level principal speaks for, and with an app token is refused (``invalidParameter``: there is no "me").
* ``getByDingTalkId``: Zida has no DingTalk ids (钉钉号, a user-chosen handle); the closest is the user's sign-in
  name (``username``, else his userId), so ``dingtalkId`` is looked up as that. Unknown: ``failure.user.userNotExist``.
* ``search`` ``size`` is 1..100 (default 10), ``offset`` ≥ 0; ``queryWord`` is required, at most 100 characters.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from zida.core.errors import InvalidArgument, NotFound
from zida.core.org import queries
from zida.core.records.values import named
from zida.dialects.dingtalk.http import Call, endpoint

__all__ = ["routes"]

READ = "Contact.User.Read"
_MAX_BATCH = 100
_MAX_WORD = 100


def _corp_pk(call: Call) -> int:
    assert call.principal is not None
    return call.principal.corp_pk


def _search_paging(call: Call) -> tuple[str, int, int]:
    word = call.text("queryWord", "body", required=True, max_chars=_MAX_WORD)
    assert word is not None
    offset = call.integer("offset", 0, "body", minimum=0)
    size = call.integer("size", 10, "body", maximum=100)
    return word, offset, size


@endpoint(READ)
async def search_users(call: Call) -> dict[str, Any]:
    """``POST /v1.0/contact/users/search``."""
    word, offset, size = _search_paging(call)
    exact = call.integer("fullMatchField", 0, "body", minimum=0, maximum=1) == 1
    total, ids = await queries.search_users(call.zida.db, _corp_pk(call), word, offset=offset, size=size, exact=exact)
    return {"hasMore": offset + len(ids) < total, "totalCount": total, "list": ids}


@endpoint(READ)
async def search_departments(call: Call) -> dict[str, Any]:
    """``POST /v1.0/contact/departments/search``."""
    word, offset, size = _search_paging(call)
    total, ids = await queries.search_departments(call.zida.db, _corp_pk(call), word, offset=offset, size=size)
    return {"hasMore": offset + len(ids) < total, "totalCount": total, "list": ids}


@endpoint(READ)
async def batch_get_users(call: Call) -> dict[str, Any]:
    """``GET /v1.0/contact/users/batch/get?userIdList=["a","b"]``."""
    wanted = call.json("userIdList", "query", required=True)
    if isinstance(wanted, str):
        wanted = [wanted]
    if not isinstance(wanted, list) or not wanted or not all(isinstance(u, str) and u for u in wanted):
        raise InvalidArgument(
            "userIdList must be a JSON array of userIds", reason="argument.invalid", param="userIdList"
        )
    if len(wanted) > _MAX_BATCH:
        raise InvalidArgument(
            f"userIdList may name at most {_MAX_BATCH} users, got {len(wanted)}",
            reason="argument.too_long",
            param="userIdList",
        )
    found = await queries.members(call.zida.db, _corp_pk(call), user_ids=wanted)
    users = []
    for m in found:
        user: dict[str, Any] = {"userid": m.user_id, "unionid": m.union_id, "name": m.name, "senior": False}
        if m.mobile:
            user["mobile"] = m.mobile
        users.append(user)
    return {"userList": users, "unauthorizedUserIdList": []}


@endpoint(READ)
async def get_user(call: Call) -> dict[str, Any]:
    """``GET /v1.0/contact/users/{unionId}`` (module docstring for ``me``)."""
    assert call.principal is not None
    union_id = call.path["unionId"]
    corp_pk = _corp_pk(call)
    if union_id == "me":
        if call.principal.user_id is None:
            raise InvalidArgument(
                "unionId me names the signed-in user: an app access token has none, name a unionId",
                reason="argument.invalid",
                param="unionId",
            )
        user_id: str | None = call.principal.user_id
    else:
        user_id = await queries.user_by_union_id(call.zida.db, corp_pk, union_id)
    found = await queries.members(call.zida.db, corp_pk, user_ids=[user_id] if user_id else [])
    if not found:
        raise NotFound(f"no user has the unionId {named(union_id)}", reason="user.not_found", param="unionId")
    member = found[0]
    out: dict[str, Any] = {"nick": member.name, "unionId": member.union_id, "visitor": False}
    if member.mobile:
        out["mobile"] = member.mobile
    if member.email:
        out["email"] = member.email
    return out


@endpoint(READ)
async def get_by_dingtalk_id(call: Call) -> dict[str, Any]:
    """``GET /v1.0/contact/user/getByDingTalkId?dingtalkId=`` (module docstring)."""
    handle = call.text("dingtalkId", "query", required=True, max_chars=64)
    assert handle is not None
    user_id = await queries.user_by_sign_in_name(call.zida.db, _corp_pk(call), handle)
    if user_id is None:
        raise NotFound(f"no user has the DingTalk id {handle}", reason="user.not_found", param="dingtalkId")
    return {"userId": user_id}


def routes() -> list[Route]:
    """The v1.0 contacts routes (api.dingtalk.com's mount)."""
    return [
        Route("/v1.0/contact/users/search", search_users, methods=["POST"]),
        Route("/v1.0/contact/departments/search", search_departments, methods=["POST"]),
        Route("/v1.0/contact/users/batch/get", batch_get_users, methods=["GET"]),
        Route("/v1.0/contact/user/getByDingTalkId", get_by_dingtalk_id, methods=["GET"]),
        Route("/v1.0/contact/users/{unionId}", get_user, methods=["GET"]),
    ]
