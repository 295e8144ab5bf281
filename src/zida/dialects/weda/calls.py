"""The calls of WeDa's action-style services (workflow, permissions): reading a PascalCase body and deciding who
acts (``ActionCall``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from zida.core.access.members import app_actor, integration_actor
from zida.core.errors import InvalidArgument, NotFound, PermissionDenied
from zida.core.principals import AppActor, Principal, Scope
from zida.core.records.values import brief, value_limits
from zida.core.workflow import queries as approval_queries
from zida.dialects.weda.http import WedaCall, check_scope
from zida.ids import is_decimal

__all__ = ["ActionCall", "Actions", "bad", "find_action", "pascal"]


def bad(message: str, reason: str = "argument.invalid") -> InvalidArgument:
    """An ``InvalidArgument`` with ``message``."""
    return InvalidArgument(message, reason=reason)


def pascal(body: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` with the first letter of each key raised."""
    return {(k[:1].upper() + k[1:]) if isinstance(k, str) else k: v for k, v in body.items()}


@dataclass
class ActionCall:
    """One action of the TencentCloud-style services (workflow, permissions): the WeDa call and its body with
    PascalCase keys (camelCase accepted: the first letter of each key is raised)."""

    call: WedaCall
    body: dict[str, Any]

    @property
    def db(self) -> Any:
        """The server's database."""
        return self.call.zida.db

    @property
    def principal(self) -> Principal:
        """Who called."""
        return self.call.principal

    def text(self, name: str, *, required: bool = False, max_chars: int = 256) -> str | None:
        """A string parameter (numbers are read as their decimal text)."""
        value = self.body.get(name)
        if value is None or value == "":
            if required:
                raise InvalidArgument(f"{name} is required", reason="argument.missing")
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise bad(f"{name} must be a string, got {brief(value)}")
        if len(value) > max_chars:
            raise bad(f"{name} is longer than {max_chars} characters")
        return value

    def required(self, name: str) -> str:
        """A string parameter that must be there."""
        return self.text(name, required=True) or ""

    def task_id(self, *names: str, required: bool = True) -> int | None:
        """A task id, from the first of ``names`` present."""
        for name in names:
            value = self.text(name)
            if value is not None:
                if not is_decimal(value) or len(value) > 19:
                    raise bad(f"{name} {brief(value)} is not a task id")
                return int(value)
        if required:
            raise InvalidArgument(f"{names[0]} is required", reason="argument.missing")
        return None

    def integer(self, name: str, default: int, *, minimum: int = 1, maximum: int | None = None) -> int:
        """An integer parameter (a decimal string, and a whole double such as ``2.0``, are accepted; ``1.5`` is
        not)."""
        value = self.body.get(name)
        if value is None or value == "":
            return default
        whole_float = isinstance(value, float) and value.is_integer() and abs(value) <= 2**53
        if whole_float or (isinstance(value, str) and is_decimal(value) and len(value) <= 9):
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad(f"{name} must be an integer, got {brief(value)}")
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and {maximum}" if maximum is not None else ""
            raise bad(f"{name} must be between {minimum}{upper}, got {value}", "argument.invalid_page")
        return value

    def flag(self, name: str) -> bool:
        """A boolean parameter (absent: false)."""
        value = self.body.get(name, False)
        if not isinstance(value, bool):
            raise bad(f"{name} must be true or false, got {brief(value)}")
        return value

    def comment(self, name: str = "OperationComment") -> str:
        """A comment of at most the text-area length (WeDa: 500 characters)."""
        return self.text(name, max_chars=max(500, value_limits().textarea_chars)) or ""

    def user_ids(self, name: str) -> list[str]:
        """A list of user ids (a comma-separated string is accepted)."""
        value = self.body.get(name)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise bad(f"{name} must be a non-empty list of user ids, got {brief(value)}")
        return list(dict.fromkeys(value))

    # ------------------------------------------------------------------------ who acts

    def named_user(self) -> str | None:
        """The user the call acts as: the signed-in user, else ``ExtraUserInfo.UserId`` (None: not named)."""
        if self.principal.kind == "session":
            return self.principal.user_id
        extra = self.body.get("ExtraUserInfo")
        if extra is None:
            return None
        if not isinstance(extra, Mapping):
            raise bad(f"ExtraUserInfo must be an object with UserId, got {brief(extra)}")
        user_id = pascal(extra).get("UserId")
        if isinstance(user_id, int) and not isinstance(user_id, bool):
            user_id = str(user_id)
        if not isinstance(user_id, str) or not user_id:
            raise bad(f"ExtraUserInfo.UserId must be a user id, got {brief(user_id)}")
        return user_id

    async def actor(self, app_pk: int) -> AppActor:
        """The acting user inside the app ``app_pk``."""
        user_id = self.named_user()
        if user_id is None:
            actor = await integration_actor(self.db, self.principal.corp_pk, app_pk)
            if actor is None:
                raise PermissionDenied(
                    "the app has no active administrator to act for a call without ExtraUserInfo.UserId",
                    reason="app.no_admin",
                )
            return actor
        try:
            return await app_actor(self.db, self.principal.corp_pk, app_pk, user_id)
        except NotFound:
            raise NotFound(f"user {user_id} does not exist in this environment", reason="user.not_found") from None

    async def instance_actor(self, instance_id: str) -> AppActor:
        """The acting user inside the app of a process instance."""
        return await self.actor(await approval_queries.instance_app_pk(self.db, self.principal.corp_pk, instance_id))

    async def instance_id(self, *names: str, task: str | None = None) -> str:
        """The instance named by the first of ``names`` present, or by the task ``task`` names."""
        for name in names:
            value = self.text(name)
            if value is not None:
                return value
        if task is not None:
            task_id = self.task_id(task, required=False)
            if task_id is not None:
                return await approval_queries.task_instance_id(self.db, self.principal.corp_pk, task_id)
        raise InvalidArgument(f"{names[0]} is required", reason="argument.missing")


Actions = dict[str, tuple[Scope, Callable[[ActionCall], Awaitable[Any]]]]


def find_action(call: WedaCall, actions: Actions, service: str) -> tuple[Scope, Callable[[ActionCall], Awaitable[Any]]]:
    """The action the path names in a service's table, once the caller's scope allows it (else the error)."""
    name = str(call.path["action"])
    found = actions.get(name)
    if found is None:
        raise NotFound(f"the {service} service has no action {brief(name)}", reason="action.not_found")
    check_scope(call.principal, found[0])
    return found
