"""The synchronous client (module docstring of :mod:`zida.client`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import httpx

from zida.client import core
from zida.client.core import ApiError, App, Plan, Token

__all__ = ["Client"]


class Client:
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
        http: httpx.Client | None = None,
    ) -> None:
        self._token_plan = core.token_plan(dialect, app_key, app_secret)
        self.dialect = dialect
        self.retries = retries
        self.backoff = backoff
        self.refresh_before = refresh_before
        self._http = http or httpx.Client(base_url=base_url, timeout=timeout, trust_env=False)
        self._token: Token | None = None
        # One token request at a time: callers needing a token at once wait for the one being fetched; those that
        # waited for a fetch that failed get its error instead of sending the same refused request again.
        self._token_lock = threading.Lock()
        self._fetches = 0
        self._fetch_error: Exception | None = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def token(self) -> str:
        """The current access token, got or renewed when it is missing or about to expire (one request for every
        caller needing it at once)."""
        token = self._token
        if token is not None and token.fresh():
            return token.value
        fetches = self._fetches
        with self._token_lock:
            token = self._token
            if token is not None and token.fresh():
                return token.value
            if self._fetches != fetches and self._fetch_error is not None:
                raise self._fetch_error  # a fetch under way when this caller came was refused
            try:
                value, expires_in = self._send(self._token_plan, None)
            except Exception as error:
                self._fetch_error = error
                raise
            else:
                self._fetch_error = None
            finally:
                self._fetches += 1  # fetches finished, whatever their outcome
            self._token = token = Token(str(value), core.renew_at(expires_in, self.refresh_before))
            return token.value

    def _send(self, plan: Plan, token: str | None) -> Any:
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = self._http.request(plan.method, plan.path, **core.request_args(plan, self.dialect, token))
            except httpx.TransportError:
                wait = core.retry_wait(plan, attempt, self.retries, None, self.backoff)
                if wait is None:
                    raise
            else:
                wait = core.retry_wait(plan, attempt, self.retries, response, self.backoff)
                if wait is None:
                    return core.read_answer(plan, response)
            time.sleep(wait)
            attempt += 1

    def run(self, plan: Plan) -> Any:
        """Send a plan with the current token; a token the server refuses is renewed once and the call sent again."""
        if not plan.authenticated:
            return self._send(plan, None)
        token = self.token()
        try:
            return self._send(plan, token)
        except ApiError as error:
            if not core.is_invalid_token(error):
                raise
            with self._token_lock:
                if self._token is not None and self._token.value == token:
                    self._token = None  # not one another caller has renewed meanwhile
            return self._send(plan, self.token())

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        idempotent: bool = False,
    ) -> Any:
        """Any route: the decoded answer (``idempotent``: retried like a GET)."""
        return self.run(
            Plan(method, path, params=params, body=json, idempotent=idempotent or method.upper() in ("GET", "DELETE"))
        )

    # Yida records

    def save_record(self, app: App, form_uuid: str, data: dict[str, Any], *, user_id: str) -> str:
        """Save a record: its formInstanceId."""
        return str(self.run(core.save_record(app, form_uuid, data, user_id)))

    def get_record(self, app: App, instance_id: str, *, user_id: str) -> dict[str, Any]:
        """One record (``formData``, ``originator``, …)."""
        return dict(self.run(core.get_record(app, instance_id, user_id)))

    def update_record(self, app: App, instance_id: str, changes: dict[str, Any], *, user_id: str) -> None:
        """Change some fields of a record."""
        self.run(core.update_record(app, instance_id, changes, user_id))

    def delete_record(self, app: App, instance_id: str, *, user_id: str) -> None:
        """Delete a record."""
        self.run(core.delete_record(app, instance_id, user_id))

    def search_records(
        self,
        app: App,
        form_uuid: str,
        *,
        user_id: str,
        conditions: list[dict[str, Any]] | None = None,
        page_size: int = 100,
    ) -> Iterator[dict[str, Any]]:
        """Every record matching ``conditions`` (``searchFieldJson`` items), page after page."""
        page, seen = 1, 0
        while True:
            records, total = self.run(core.search_page(app, form_uuid, user_id, conditions, page, page_size))
            yield from records
            seen += len(records)
            if not records or seen >= total:
                return
            page += 1

    # Yida approvals

    def start_process(
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
        return str(self.run(core.start_process(app, form_uuid, data, user_id, process_code, department_id)))

    def get_process(self, app: App, instance_id: str, *, user_id: str) -> dict[str, Any]:
        """An approval (``instanceStatus``, ``approvedResult``, ``data``, …)."""
        return dict(self.run(core.get_process(app, instance_id, user_id)))

    def running_tasks(self, app: App, instance_id: str, *, user_id: str) -> list[dict[str, Any]]:
        """An approval's open tasks."""
        return list(self.run(core.running_tasks(app, instance_id, user_id)))

    def execute_task(
        self, app: App, instance_id: str, task_id: int, result: str, *, user_id: str, remark: str = ""
    ) -> None:
        """Agree (``AGREE``) or refuse (``DISAGREE``) a task as its assignee ``user_id``."""
        self.run(core.execute_task(app, instance_id, task_id, result, user_id, remark))

    # WeDa data models

    def create_model_record(self, env_type: str, model: str, data: dict[str, Any]) -> str:
        """Create a data-model record: its ``_id``."""
        return str(self.run(core.model_create(env_type, model, data)))

    def get_model_record(self, env_type: str, model: str, record_id: str) -> dict[str, Any] | None:
        """One data-model record by ``_id`` (None: no such record)."""
        found = self.run(core.model_get(env_type, model, record_id))
        return dict(found) if found is not None else None

    def list_model_records(
        self, env_type: str, model: str, *, where: dict[str, Any] | None = None, page_size: int = 200
    ) -> Iterator[dict[str, Any]]:
        """Every data-model record matching ``where``, page after page."""
        page, seen = 1, 0
        while True:
            records, total = self.run(core.model_page(env_type, model, where, page, page_size))
            yield from records
            seen += len(records)
            if not records or seen >= total:
                return
            page += 1
