"""The asynchronous client: :class:`zida.client.Client`'s calls, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import httpx

from zida.client import core
from zida.client.core import ApiError, App, Plan, Token

__all__ = ["AsyncClient"]


class AsyncClient:
    """Zida (DingTalk or WeDa dialect) over one httpx connection pool, with token caching, renewal and retries."""

    def __init__(
        self,
        base_url: str,
        app_key: str,
        app_secret: str,
        *,
        dialect: str = "dingtalk",
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.2,
        refresh_before: float | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._token_plan = core.token_plan(dialect, app_key, app_secret)
        self.dialect = dialect
        self.retries = retries
        self.backoff = backoff
        self.refresh_before = refresh_before
        self._http = http or httpx.AsyncClient(base_url=base_url, timeout=timeout, trust_env=False)
        self._token: Token | None = None
        # One token request at a time: callers needing a token at once wait for the one being fetched; those that
        # waited for a fetch that failed get its error instead of sending the same refused request again.
        self._token_lock = asyncio.Lock()
        self._fetches = 0
        self._fetch_error: Exception | None = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def token(self) -> str:
        """The current access token, got or renewed when it is missing or about to expire (one request for every
        caller needing it at once)."""
        token = self._token
        if token is not None and token.fresh():
            return token.value
        fetches = self._fetches
        async with self._token_lock:
            token = self._token
            if token is not None and token.fresh():
                return token.value
            if self._fetches != fetches and self._fetch_error is not None:
                raise self._fetch_error  # a fetch under way when this caller came was refused
            try:
                value, expires_in = await self._send(self._token_plan, None)
            except Exception as error:
                self._fetch_error = error
                raise
            else:
                self._fetch_error = None
            finally:
                self._fetches += 1  # fetches finished, whatever their outcome
            self._token = token = Token(str(value), core.renew_at(expires_in, self.refresh_before))
            return token.value

    async def _send(self, plan: Plan, token: str | None) -> Any:
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = await self._http.request(
                    plan.method, plan.path, **core.request_args(plan, self.dialect, token)
                )
            except httpx.TransportError:
                wait = core.retry_wait(plan, attempt, self.retries, None, self.backoff)
                if wait is None:
                    raise
            else:
                wait = core.retry_wait(plan, attempt, self.retries, response, self.backoff)
                if wait is None:
                    return core.read_answer(plan, response)
            await asyncio.sleep(wait)
            attempt += 1

    async def run(self, plan: Plan) -> Any:
        """Send a plan with the current token; a token the server refuses is renewed once and the call sent again."""
        if not plan.authenticated:
            return await self._send(plan, None)
        token = await self.token()
        try:
            return await self._send(plan, token)
        except ApiError as error:
            if not core.is_invalid_token(error):
                raise
            if self._token is not None and self._token.value == token:
                self._token = None  # not one another caller has renewed meanwhile
            return await self._send(plan, await self.token())

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        idempotent: bool = False,
    ) -> Any:
        """Any route: the decoded answer (``idempotent``: retried like a GET)."""
        return await self.run(
            Plan(method, path, params=params, body=json, idempotent=idempotent or method.upper() in ("GET", "DELETE"))
        )

    # Yida records

    async def save_record(self, app: App, form_uuid: str, data: dict[str, Any], *, user_id: str) -> str:
        """Save a record: its formInstanceId."""
        return str(await self.run(core.save_record(app, form_uuid, data, user_id)))

    async def get_record(self, app: App, instance_id: str, *, user_id: str) -> dict[str, Any]:
        """One record (``formData``, ``originator``, …)."""
        return dict(await self.run(core.get_record(app, instance_id, user_id)))

    async def update_record(self, app: App, instance_id: str, changes: dict[str, Any], *, user_id: str) -> None:
        """Change some fields of a record."""
        await self.run(core.update_record(app, instance_id, changes, user_id))

    async def delete_record(self, app: App, instance_id: str, *, user_id: str) -> None:
        """Delete a record."""
        await self.run(core.delete_record(app, instance_id, user_id))

    async def search_records(
        self,
        app: App,
        form_uuid: str,
        *,
        user_id: str,
        conditions: list[dict[str, Any]] | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every record matching ``conditions`` (``searchFieldJson`` items), page after page."""
        page, seen = 1, 0
        while True:
            records, total = await self.run(core.search_page(app, form_uuid, user_id, conditions, page, page_size))
            for record in records:
                yield record
            seen += len(records)
            if not records or seen >= total:
                return
            page += 1

    # Yida approvals

    async def start_process(
        self,
        app: App,
        form_uuid: str,
        data: dict[str, Any],
        *,
        user_id: str,
        process_code: str | None = None,
        department_id: int | None = None,
    ) -> str:
        """Start an approval: its processInstanceId."""
        return str(await self.run(core.start_process(app, form_uuid, data, user_id, process_code, department_id)))

    async def get_process(self, app: App, instance_id: str, *, user_id: str) -> dict[str, Any]:
        """An approval (``instanceStatus``, ``approvedResult``, ``data``, …)."""
        return dict(await self.run(core.get_process(app, instance_id, user_id)))

    async def running_tasks(self, app: App, instance_id: str, *, user_id: str) -> list[dict[str, Any]]:
        """An approval's open tasks."""
        return list(await self.run(core.running_tasks(app, instance_id, user_id)))

    async def execute_task(
        self, app: App, instance_id: str, task_id: int, result: str, *, user_id: str, remark: str = ""
    ) -> None:
        """Agree (``AGREE``) or refuse (``DISAGREE``) a task as its assignee ``user_id``."""
        await self.run(core.execute_task(app, instance_id, task_id, result, user_id, remark))

    # WeDa data models

    async def create_model_record(self, env_type: str, model: str, data: dict[str, Any]) -> str:
        """Create a data-model record: its ``_id``."""
        return str(await self.run(core.model_create(env_type, model, data)))

    async def get_model_record(self, env_type: str, model: str, record_id: str) -> dict[str, Any] | None:
        """One data-model record by ``_id`` (None: no such record)."""
        found = await self.run(core.model_get(env_type, model, record_id))
        return dict(found) if found is not None else None

    async def list_model_records(
        self, env_type: str, model: str, *, where: dict[str, Any] | None = None, page_size: int = 200
    ) -> AsyncIterator[dict[str, Any]]:
        """Every data-model record matching ``where``, page after page."""
        page, seen = 1, 0
        while True:
            records, total = await self.run(core.model_page(env_type, model, where, page, page_size))
            for record in records:
                yield record
            seen += len(records)
            if not records or seen >= total:
                return
            page += 1
