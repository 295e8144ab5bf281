"""What the sync and async clients share: calls as data (:class:`Plan`), error parsing, token lifetimes, backoff."""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = [
    "ApiError",
    "App",
    "Plan",
    "Token",
    "api_error",
    "backoff",
    "is_invalid_token",
    "retry_wait",
    "retryable",
    "token_plan",
]

DINGTALK_TOKEN_HEADER = "x-acs-dingtalk-access-token"  # noqa: S105 (a header name)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_WAIT = 30.0  # seconds: the longest wait before a retry; a server asking for longer is answered with its refusal
INVALID_RESPONSE = "InvalidResponse"  # ApiError.code of an answer that is not the JSON the call expects
# Rate limits and "busy" in each dialect's words: v1.0, oapi (90018; -1 系统繁忙 is how oapi says 503), WeDa data
# models, WeDa workflow, WeDa storage.
_RETRY_CODES = frozenset(
    {
        "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
        "90018",
        "-1",
        "REQUEST_LIMIT_EXCEEDED",
        "SERVICE_UNAVAILABLE",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "EXCEED_RATELIMIT",
    }
)
# Tokens the server no longer takes: DingTalk v1.0 (400 InvalidAuthentication), oapi (40014/42001), WeDa (401).
_INVALID_TOKEN_CODES = frozenset({"InvalidAuthentication", "INVALID_ACCESS_TOKEN", "40014", "42001", "88"})


class ApiError(Exception):
    """A refusal: the HTTP status, the dialect's code and message, the request id and the decoded body."""

    def __init__(self, status: int, code: str, message: str, request_id: str | None, body: Any) -> None:
        super().__init__(f"{status} {code}: {message}" + (f" (request {request_id})" if request_id else ""))
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.body = body


@dataclass(frozen=True, slots=True)
class App:
    """A Yida app as its calls name it: ``appType`` and its ``systemToken``."""

    app_type: str
    system_token: str

    def params(self, user_id: str) -> dict[str, str]:
        """The three parameters every Yida call carries."""
        return {"appType": self.app_type, "systemToken": self.system_token, "userId": user_id}


@dataclass(slots=True, repr=False)
class Plan:
    """One call: method, path, query, JSON body; whether sending it twice is harmless; how to read the answer."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    body: Any = None
    idempotent: bool = False
    read: Callable[[Any], Any] = field(default=lambda body: body)
    authenticated: bool = True

    def __repr__(self) -> str:
        # No query or body: a token request's carry the app secret (a traceback's locals, a log line).
        return f"Plan({self.method} {self.path}, idempotent={self.idempotent})"


@dataclass(slots=True)
class Token:
    """A cached access token and when the client renews it (monotonic seconds)."""

    value: str
    renew_at: float

    def fresh(self) -> bool:
        """Whether it may still be used without renewing it first."""
        return time.monotonic() < self.renew_at


def renew_at(expires_in: float, refresh_before: float | None) -> float:
    """When to renew a token that lives ``expires_in`` seconds: ``refresh_before`` early (default: 10 minutes, or a
    quarter of a lifetime shorter than 40 minutes)."""
    early = refresh_before if refresh_before is not None else min(600.0, expires_in / 4)
    return time.monotonic() + max(0.0, expires_in - early)


def token_plan(dialect: str, app_key: str, app_secret: str) -> Plan:
    """The call that gets a token: its answer read as ``(token, expires_in)``."""
    if dialect == "dingtalk":
        return Plan(
            "POST",
            "/v1.0/oauth2/accessToken",
            body={"appKey": app_key, "appSecret": app_secret},
            idempotent=True,
            read=lambda b: (b["accessToken"], float(b["expireIn"])),
            authenticated=False,
        )
    if dialect == "weda":
        basic = base64.b64encode(f"{app_key}:{app_secret}".encode()).decode()
        return Plan(
            "POST",
            "/auth/v1/token/clientCredential",
            params={"__basic": basic},
            body={"grant_type": "client_credentials"},
            idempotent=True,
            read=lambda b: (b["access_token"], float(b["expires_in"])),
            authenticated=False,
        )
    raise ValueError(f"dialect must be 'dingtalk' or 'weda', not {dialect!r}")


def request_args(plan: Plan, dialect: str, token: str | None) -> dict[str, Any]:
    """httpx ``request`` keyword arguments for a plan, with the dialect's way of sending the token."""
    params = dict(plan.params or {})
    headers: dict[str, str] = {}
    basic = params.pop("__basic", None)
    if basic is not None:
        headers["authorization"] = f"Basic {basic}"
    if token is not None:
        if dialect == "weda" or plan.path.startswith("/admin/"):
            headers["authorization"] = f"Bearer {token}"
        elif plan.path.startswith("/topapi/") or not plan.path.startswith(("/v1.0/", "/v2.0/")):
            params["access_token"] = token
        else:
            headers[DINGTALK_TOKEN_HEADER] = token
    args: dict[str, Any] = {"params": params or None, "headers": headers}
    if plan.body is not None:
        args["json"] = plan.body
    return args


def _decoded(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text


def api_error(response: httpx.Response) -> ApiError | None:
    """The refusal an answer carries (any dialect's shape), or None for a success."""
    body = _decoded(response)
    code: Any = None
    message: Any = None
    # DingTalk v1.0 sends x-acs-request-id; WeDa, the admin API and oapi's /gettoken x-request-id.
    request_id: Any = response.headers.get("x-acs-request-id") or response.headers.get("x-request-id")
    if isinstance(body, dict):
        error = body.get("Response", {}).get("Error") if isinstance(body.get("Response"), dict) else None
        if isinstance(error, dict):  # WeDa workflow: HTTP 200 with Response.Error
            code, message = error.get("Code"), error.get("Message")
            request_id = body["Response"].get("RequestId", request_id)
        elif "errcode" in body:  # oapi: HTTP 200 with errcode
            if body["errcode"] != 0:
                code, message = str(body["errcode"]), body.get("errmsg")
                if body.get("sub_code"):
                    message = f"{message} ({body['sub_code']}: {body.get('sub_msg')})"
            request_id = body.get("request_id", request_id)
        elif isinstance(body.get("error"), dict):  # the admin API: {"error": {"code", "message"}}
            code, message = body["error"].get("code"), body["error"].get("message")
        elif response.status_code >= 400 or (body.get("code") and "message" in body and "data" not in body):
            code = body.get("code") or body.get("error")
            message = body.get("message") or body.get("error_description")
            request_id = body.get("requestid") or body.get("requestId") or request_id
    if code is None and response.status_code < 400:
        return None
    if code is None:
        code, message = str(response.status_code), response.reason_phrase
    return ApiError(response.status_code, str(code), str(message or ""), request_id, body)


def is_invalid_token(error: ApiError) -> bool:
    """Whether the server refused the token itself (renewing it may help)."""
    if error.code == "88":
        return isinstance(error.body, dict) and str(error.body.get("sub_code")) in ("40014", "42001")
    return error.code in _INVALID_TOKEN_CODES or (error.status == 401 and error.code != "invalid_client")


def retryable(response: httpx.Response) -> bool:
    """Whether an answer is worth sending again (if the call is idempotent): 429 and 5xx, and each dialect's own
    rate-limit and busy answers, whatever their HTTP status (DingTalk v1.0's 403, oapi's HTTP 200 with errcode)."""
    if response.status_code in RETRY_STATUSES:
        return True
    if response.status_code not in (200, 400, 403):
        return False
    error = api_error(response)
    if error is None:
        return False
    if error.code == "88":  # topapi wraps the gateway's refusals
        return isinstance(error.body, dict) and str(error.body.get("sub_code")) in _RETRY_CODES
    return error.code in _RETRY_CODES


def backoff(attempt: int, response: httpx.Response | None, base: float) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``: exponential with full jitter, at least ``Retry-After``; None
    when ``Retry-After`` asks for more than ``MAX_WAIT`` (a retry sooner would only be refused again: give up)."""
    wait = random.uniform(0, base * 2**attempt)  # jitter, not a secret
    if response is not None:
        after = response.headers.get("retry-after", "")
        if after.isascii() and after.isdigit():
            if float(after) > MAX_WAIT:
                return None
            wait = max(wait, float(after))
        elif response.status_code == 200:  # oapi and WeDa say "too many" in an HTTP 200 without Retry-After: the
            wait = max(wait, 1.0)  # limits count calls per second
    return min(wait, MAX_WAIT)


def retry_wait(plan: Plan, attempt: int, retries: int, response: httpx.Response | None, base: float) -> float | None:
    """Seconds to wait before sending ``plan`` again after attempt ``attempt`` (``response`` None: a connection
    error), or None when it must not be sent again: a write, retries spent, an answer not worth retrying."""
    if not plan.idempotent or attempt >= retries or (response is not None and not retryable(response)):
        return None
    return backoff(attempt, response, base)


def _invalid(plan: Plan, response: httpx.Response, what: str, body: Any) -> ApiError:
    request_id = response.headers.get("x-acs-request-id") or response.headers.get("x-request-id")
    kind = response.headers.get("content-type") or "no content-type"
    snippet = repr(response.text[:60]) if response.content else "an empty body"
    message = f"{what} to {plan.method} {plan.path}: HTTP {response.status_code}, {kind}, {snippet}"
    return ApiError(response.status_code, INVALID_RESPONSE, message, request_id, body)


def read_answer(plan: Plan, response: httpx.Response) -> Any:
    """The plan's result from a successful answer, or the refusal raised (an answer that is not the JSON the call
    expects, such as a proxy's HTML page or an empty body, is an ``ApiError`` with code ``InvalidResponse``)."""
    error = api_error(response)
    if error is not None:
        raise error
    if not response.content:
        body = None
    else:
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _invalid(plan, response, "not a JSON answer", response.text) from None
    try:
        return plan.read(body)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise _invalid(plan, response, "an unexpected answer", body) from exc


# ------------------------------------------------------------------------------------------------ plans


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise TypeError(f"expected a JSON object, not {type(body).__name__}")
    return body


def save_record(app: App, form_uuid: str, data: dict[str, Any], user_id: str) -> Plan:
    """Yida ``saveFormData``: the new formInstanceId."""
    body = {**app.params(user_id), "formUuid": form_uuid, "formDataJson": json.dumps(data, ensure_ascii=False)}
    return Plan("POST", "/v1.0/yida/forms/instances", body=body, read=lambda b: b["result"])


def get_record(app: App, instance_id: str, user_id: str) -> Plan:
    """Yida ``getFormDataById``: the record."""
    path = f"/v1.0/yida/forms/instances/{instance_id}"
    return Plan("GET", path, params=app.params(user_id), idempotent=True, read=_object)


def update_record(app: App, instance_id: str, changes: dict[str, Any], user_id: str) -> Plan:
    """Yida ``updateFormData`` (the fields given; the others stay)."""
    body = {
        **app.params(user_id),
        "formInstanceId": instance_id,
        "updateFormDataJson": json.dumps(changes, ensure_ascii=False),
    }
    return Plan("PUT", "/v1.0/yida/forms/instances", body=body, idempotent=True, read=lambda b: None)


def delete_record(app: App, instance_id: str, user_id: str) -> Plan:
    """Yida ``deleteFormData``."""
    params = {**app.params(user_id), "formInstanceId": instance_id}
    return Plan("DELETE", "/v1.0/yida/forms/instances", params=params, idempotent=True, read=lambda b: None)


def search_page(
    app: App, form_uuid: str, user_id: str, conditions: list[dict[str, Any]] | None, page: int, page_size: int
) -> Plan:
    """One page of Yida ``searchFormDatas``: ``(records, totalCount)``."""
    body: dict[str, Any] = {**app.params(user_id), "formUuid": form_uuid, "currentPage": page, "pageSize": page_size}
    if conditions:
        body["searchFieldJson"] = json.dumps(conditions, ensure_ascii=False)
    return Plan(
        "POST",
        "/v1.0/yida/forms/instances/search",
        body=body,
        idempotent=True,
        read=lambda b: (b.get("data") or [], int(b.get("totalCount") or 0)),
    )


def start_process(
    app: App, form_uuid: str, data: dict[str, Any], user_id: str, process_code: str | None, department_id: int | None
) -> Plan:
    """Yida ``startInstance``: the processInstanceId."""
    body: dict[str, Any] = {
        **app.params(user_id),
        "formUuid": form_uuid,
        "formDataJson": json.dumps(data, ensure_ascii=False),
    }
    if process_code:
        body["processCode"] = process_code
    if department_id is not None:
        body["departmentId"] = str(department_id)
    return Plan("POST", "/v1.0/yida/processes/instances/start", body=body, read=lambda b: b["result"])


def get_process(app: App, instance_id: str, user_id: str) -> Plan:
    """Yida ``getInstanceById``: the approval with its status and result."""
    return Plan(
        "GET",
        f"/v1.0/yida/processes/instancesInfos/{instance_id}",
        params=app.params(user_id),
        idempotent=True,
        read=_object,
    )


def running_tasks(app: App, instance_id: str, user_id: str) -> Plan:
    """Yida ``getRunningTasks``: the approval's open tasks."""
    params = {**app.params(user_id), "processInstanceId": instance_id}
    return Plan(
        "GET",
        "/v1.0/yida/processes/tasks/getRunningTasks",
        params=params,
        idempotent=True,
        read=lambda b: b.get("result") or [],
    )


def execute_task(app: App, instance_id: str, task_id: int, result: str, user_id: str, remark: str) -> Plan:
    """Yida ``executeTask`` (``result``: AGREE or DISAGREE)."""
    body = {
        **app.params(user_id),
        "processInstanceId": instance_id,
        "taskId": task_id,
        "outResult": result,
        "remark": remark,
    }
    return Plan("POST", "/v1.0/yida/tasks/execute", body=body, read=lambda b: None)


def model_create(env_type: str, model: str, data: dict[str, Any]) -> Plan:
    """WeDa data model ``create``: the new record's ``_id``."""
    return Plan("POST", f"/v1/model/{env_type}/{model}/create", body={"data": data}, read=lambda b: b["data"]["id"])


def model_get(env_type: str, model: str, record_id: str) -> Plan:
    """WeDa data model ``get`` of one record by ``_id`` (None when there is none)."""
    body = {"filter": {"where": {"_id": {"$eq": record_id}}}}
    return Plan(
        "POST", f"/v1/model/{env_type}/{model}/get", body=body, idempotent=True, read=lambda b: b["data"].get("record")
    )


def model_page(env_type: str, model: str, where: dict[str, Any] | None, page: int, page_size: int) -> Plan:
    """One page of WeDa data model ``list``: ``(records, total)``."""
    body: dict[str, Any] = {"pageNumber": page, "pageSize": page_size, "getCount": True}
    if where:
        body["filter"] = {"where": where}
    return Plan(
        "POST",
        f"/v1/model/{env_type}/{model}/list",
        body=body,
        idempotent=True,
        read=lambda b: (b["data"].get("records") or [], int(b["data"].get("total") or 0)),
    )
