"""The auth matrix of every process and task route (yida_1_0 and yida_2_0) × every way a caller can be wrong,
through the official SDK.

Each route is one function making a *valid* call as the user who may make it (the originator, the assignee, an
app admin…), on a fresh instance set up with a full token. Each case changes one thing: the access token, its
scopes, the app credentials, the user, whose instance or form it names, or who acts on it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from tests.conformance.sdk import A_ALL, APP_A1, expect_error
from tests.conformance.workflow.conftest import APP1, APP2, CORP, FLOW_ALL, FLOW_FORMS, FLOW_READ, TASK_API_CODE, Flow

PROCESS_READ = ("flow-process-read", "flow-secret-pread-01")
PROCESS_WRITE = ("flow-process-write", "flow-secret-pwrite-01")
TASK_READ = ("flow-task-read", "flow-secret-tread-01")
TASK_WRITE = ("flow-task-write", "flow-secret-twrite-01")
SINGLE_SCOPES = {
    "process-read-token": (PROCESS_READ, "Yida.Process.Read"),
    "process-write-token": (PROCESS_WRITE, "Yida.Process.Write"),
    "task-read-token": (TASK_READ, "Yida.Task.Read"),
    "task-write-token": (TASK_WRITE, "Yida.Task.Write"),
}
CODES = {CORP: TASK_API_CODE, "corpA": "code-of-corp-a"}
FORM = "FORM-FLOW-TWO"

OK = "ok"
EMPTY = "empty"  # the call succeeds but shows (or does) nothing of the instance
MISSING = ("AuthenticationFailed.MissingParameter", 400)
INVALID = ("InvalidAuthentication", 400)
DENIED = ("Forbidden.AccessDenied.AccessTokenPermissionDenied", 403)
APP_GONE = ("applicationNotExist.application.notExits", 400)
KEY_MISMATCH = ("invalidParameter.parameter.accessKeyNotMatch", 400)
BAD_ORG_TOKEN = ("invalidState.authorization.invalidAuthorizationInformation", 400)
NO_USER = ("failure.user.userNotExist", 400)
RECORD_GONE = ("invalidState.form.dataDoesNotExistOrIsDeleted", 400)
NO_FORM = ("invalidState.form.formNotExist", 400)
NO_PROCESS = ("invalidParameter.parameter.error", 400)
NO_PERMISSION = ("noPermission.permission.deny", 400)
NOT_ASSIGNEE = ("failure.task.failedToPerformApproval", 400)
NOT_CURRENT = ("noPermission.process.onlyCurrentApproverCanReturnProcessInstance", 400)

Outcome = str | tuple[str, int]


@dataclass(frozen=True)
class Caller:
    """Who calls and on what: the variables the matrix changes."""

    credential: tuple[str, str] | None = FLOW_ALL
    raw_token: str | None = None  # used instead of the credential's token when set
    app: tuple[str, str] = (APP1["app_type"], APP1["system_token"])
    user: str | None = None  # None: the route's own actor
    corp_id: str = CORP
    org_token: str | None = None  # org routes; default: the right token for corp_id + user


@dataclass
class Ctx:
    flow: Flow
    caller: Caller
    mark: str = field(default_factory=lambda: "am" + secrets.token_hex(5))

    @property
    def token(self) -> str | None:
        if self.caller.raw_token is not None:
            return self.caller.raw_token
        return None if self.caller.credential is None else self.flow.sdk.token(self.caller.credential)

    @property
    def app(self) -> dict[str, str]:
        return {"app_type": self.caller.app[0], "system_token": self.caller.app[1]}

    def user(self, own: str) -> str:
        return self.caller.user or own

    def org_token(self, own: str) -> str:
        if self.caller.org_token is not None:
            return self.caller.org_token
        user = self.user(own)
        return hashlib.md5((self.caller.corp_id + user + CODES[self.caller.corp_id]).encode()).hexdigest().upper()

    def fresh(self) -> str:
        """A new FORM-FLOW-TWO instance of li, waiting for wang (set up with a full token)."""
        return self.flow.start(FORM, {"textField_title": self.mark})

    def call(self, api: str, *path: str, version: int = 1, **fields: Any) -> Any:
        return self.flow.sdk.call(api, *path, token=self.token, version=version, **fields)


Result = tuple[Any, str | None]


# ---------------------------------------------------------------------------------------------- process


def start_instance(c: Ctx, version: int = 1) -> Result:
    data = json.dumps({"textField_title": c.mark})
    return c.call(
        "start_instance", version=version, **c.app, user_id=c.user("li"), form_uuid=FORM, form_data_json=data
    ), None


def start_instance_v2(c: Ctx) -> Result:
    return start_instance(c, 2)


def terminate_instance(c: Ctx) -> Result:
    iid = c.fresh()
    return c.call("terminate_instance", **c.app, user_id=c.user("li"), process_instance_id=iid), iid


def delete_instance(c: Ctx) -> Result:
    iid = c.fresh()
    return c.call("delete_instance", **c.app, user_id=c.user("adm"), process_instance_id=iid), iid


def update_instance(c: Ctx) -> Result:
    iid = c.fresh()
    values = '{"numberField_amount": 1}'
    return c.call(
        "update_instance", **c.app, user_id=c.user("li"), process_instance_id=iid, update_form_data_json=values
    ), iid


def get_instance_id_list(c: Ctx, version: int = 1) -> Result:
    iid = c.fresh()
    search = json.dumps({"textField_title": c.mark})
    return c.call(
        "get_instance_id_list",
        version=version,
        **c.app,
        user_id=c.user("adm"),
        form_uuid=FORM,
        search_field_json=search,
    ), iid


def get_instance_id_list_v2(c: Ctx) -> Result:
    return get_instance_id_list(c, 2)


def get_instances(c: Ctx, version: int = 1) -> Result:
    iid = c.fresh()
    search = json.dumps({"textField_title": c.mark})
    return c.call(
        "get_instances", version=version, **c.app, user_id=c.user("adm"), form_uuid=FORM, search_field_json=search
    ), iid


def get_instances_v2(c: Ctx) -> Result:
    return get_instances(c, 2)


def get_instances_by_id_list(c: Ctx) -> Result:
    iid = c.fresh()
    return c.call("get_instances_by_id_list", **c.app, user_id=c.user("adm"), process_instance_ids=iid), iid


def get_instance_by_id(c: Ctx, version: int = 1) -> Result:
    iid = c.fresh()
    return c.call("get_instance_by_id", iid, version=version, **c.app, user_id=c.user("adm")), iid


def get_instance_by_id_v2(c: Ctx) -> Result:
    return get_instance_by_id(c, 2)


def get_process_definition(c: Ctx) -> Result:
    iid = c.fresh()
    return c.call("get_process_definition", iid, **c.app, user_id=c.user("adm")), iid


def get_activity_list(c: Ctx) -> Result:
    return c.call("get_activity_list", **c.app, user_id=c.user("adm"), process_code="TPROC--FLOW-TWO"), None


def get_operation_records(c: Ctx) -> Result:
    iid = c.fresh()
    return c.call("get_operation_records", **c.app, user_id=c.user("adm"), process_instance_id=iid), iid


def restart_instance_v2(c: Ctx) -> Result:
    iid = c.fresh()
    task = c.flow.task_of(iid, "wang")
    return c.call(
        "restart_instance",
        version=2,
        **c.app,
        user_id=c.user("wang"),
        form_uuid=FORM,
        proc_instance_id=iid,
        task_id=str(task),
        current_activity_id="node_one",
        target_activity_id="sid-restartevent",
    ), iid


# ------------------------------------------------------------------------------------------------ tasks


def get_running_tasks(c: Ctx) -> Result:
    iid = c.fresh()
    return c.call("get_running_tasks", **c.app, user_id=c.user("adm"), process_instance_id=iid), iid


def get_running_task_list(c: Ctx) -> Result:
    iid = c.fresh()
    return c.call(
        "get_running_task_list", **c.app, user_id=c.user("adm"), process_instance_id_list=iid, user_corp_id=CORP
    ), iid


def execute_task(c: Ctx) -> Result:
    iid = c.fresh()
    task = c.flow.task_of(iid, "wang")
    return c.call(
        "execute_task",
        **c.app,
        user_id=c.user("wang"),
        process_instance_id=iid,
        task_id=task,
        out_result="AGREE",
        remark="",
    ), iid


def execute_batch_task(c: Ctx) -> Result:
    iid = c.fresh()
    items = json.dumps([{"taskId": str(c.flow.task_of(iid, "wang")), "formInstId": iid}])
    return c.call(
        "execute_batch_task", **c.app, user_id=c.user("wang"), out_result="agree", task_information_list=items
    ), iid


def execute_platform_task(c: Ctx) -> Result:
    iid = c.fresh()
    return c.call(
        "execute_platform_task", **c.app, user_id=c.user("adm"), process_instance_id=iid, out_result="agree", remark=""
    ), iid


def redirect_task(c: Ctx) -> Result:
    iid = c.fresh()
    task = c.flow.task_of(iid, "wang")
    return c.call(
        "redirect_task",
        **c.app,
        user_id=c.user("wang"),
        process_instance_id=iid,
        task_id=task,
        now_action_executor_id="sun",
        remark="",
    ), iid


def get_task_copies(c: Ctx) -> Result:
    return c.call("get_task_copies", **c.app, user_id=c.user("sun")), None


def get_me_corp_submission(c: Ctx) -> Result:
    return c.call(
        "get_me_corp_submission", c.user("li"), corp_id=c.caller.corp_id, org_token=c.org_token("li"), page_size=1
    ), None


def get_corp_tasks(c: Ctx) -> Result:
    return c.call(
        "get_corp_tasks", corp_id=c.caller.corp_id, user_id=c.user("wang"), org_token=c.org_token("wang"), page_size=1
    ), None


def get_corp_accomplishment_tasks(c: Ctx) -> Result:
    return c.call(
        "get_corp_accomplishment_tasks",
        c.caller.corp_id,
        c.user("wang"),
        org_token=c.org_token("wang"),
        page_size=1,
    ), None


def get_notify_me(c: Ctx) -> Result:
    return c.call("get_notify_me", c.user("sun"), corp_id=c.caller.corp_id, org_token=c.org_token("sun")), None


# ------------------------------------------------------------------------------------------------ routes


def _ids(body: Any) -> list[str]:
    return list(body.data)


def _data(body: Any) -> list[str]:
    return [d.process_instance_id for d in body.data]


def _result(body: Any) -> list[str]:
    return [r.process_instance_id for r in body.result]


@dataclass(frozen=True)
class Route:
    invoke: Callable[[Ctx], Result]
    scope: str
    kind: str  # form | instance | process | app | org
    # What a user who takes no part in the instance gets (instance routes).
    bystander: Outcome = NO_PERMISSION
    # What naming another app's or corp's instance gets: an error, or EMPTY for list routes.
    hidden: Outcome = RECORD_GONE
    # For list routes: the instance ids the response shows, or a test of whether it did something.
    shows: Callable[[Any], list[str]] | None = None
    overrides: dict[str, Outcome] = field(default_factory=dict)


ROUTES = [
    Route(start_instance, "Yida.Process.Write", "form", bystander=OK),  # any member may start one
    Route(start_instance_v2, "Yida.Process.Write", "form", bystander=OK),
    Route(terminate_instance, "Yida.Process.Write", "instance"),
    Route(delete_instance, "Yida.Process.Write", "instance"),
    Route(update_instance, "Yida.Process.Write", "instance"),
    Route(get_instance_id_list, "Yida.Process.Read", "form", bystander=EMPTY, shows=_ids),
    Route(get_instance_id_list_v2, "Yida.Process.Read", "form", bystander=EMPTY, shows=_ids),
    Route(get_instances, "Yida.Process.Read", "form", bystander=EMPTY, shows=_data),
    Route(get_instances_v2, "Yida.Process.Read", "form", bystander=EMPTY, shows=_data),
    Route(get_instances_by_id_list, "Yida.Process.Read", "instance", bystander=EMPTY, hidden=EMPTY, shows=_result),
    Route(get_instance_by_id, "Yida.Process.Read", "instance"),
    Route(get_instance_by_id_v2, "Yida.Process.Read", "instance"),
    Route(get_process_definition, "Yida.Process.Read", "instance"),
    Route(get_activity_list, "Yida.Process.Read", "process"),
    Route(get_operation_records, "Yida.Process.Read", "instance"),
    Route(restart_instance_v2, "Yida.Process.Write", "instance", bystander=NOT_CURRENT),
    Route(get_running_tasks, "Yida.Task.Read", "instance"),
    Route(get_running_task_list, "Yida.Task.Read", "instance", bystander=EMPTY, hidden=EMPTY, shows=_result),
    Route(execute_task, "Yida.Process.Write", "instance", bystander=NOT_ASSIGNEE),
    Route(
        execute_batch_task,
        "Yida.Task.Write",
        "instance",
        bystander=EMPTY,
        hidden=EMPTY,
        shows=lambda body: ["done"] * body.success_number,
    ),
    Route(execute_platform_task, "Yida.Task.Write", "instance"),
    # The new assignee must be a user of the caller's corp: corp A does not know sun.
    Route(
        redirect_task,
        "Yida.Task.Write",
        "instance",
        bystander=NOT_ASSIGNEE,
        overrides={"other-corps-instance": NO_USER},
    ),
    Route(get_task_copies, "Yida.Task.Read", "app"),
    Route(get_me_corp_submission, "Yida.Process.Read", "org"),
    Route(get_corp_tasks, "Yida.Task.Read", "org"),
    Route(get_corp_accomplishment_tasks, "Yida.Task.Read", "org"),
    Route(get_notify_me, "Yida.Task.Read", "org"),
]


CASES: dict[str, Caller] = {
    "ok": Caller(),
    "no-token": Caller(credential=None),
    "bad-token": Caller(raw_token="not-a-real-token"),
    "no-scope": Caller(credential=FLOW_FORMS),
    "read-only-token": Caller(credential=FLOW_READ),
    **{case: Caller(credential=credential) for case, (credential, _) in SINGLE_SCOPES.items()},
    # Corp A's token naming this corp's app (or, for the org routes, this corp's corpId).
    "other-corp-token": Caller(credential=A_ALL),
    "wrong-system-token": Caller(app=(APP1["app_type"], "ST-WRONG-TOKEN")),
    "other-apps-system-token": Caller(app=(APP1["app_type"], APP2["system_token"])),
    "unknown-user": Caller(user="ghost"),
    "other-corps-user": Caller(user="admin1"),
}
# Corp A, fully authenticated on its own app; and the admin of APP_FLOW2 naming APP_FLOW2.
OTHER_CORP = Caller(credential=A_ALL, app=(APP_A1["app_type"], APP_A1["system_token"]), user="admin1")
OTHER_APP = Caller(app=(APP2["app_type"], APP2["system_token"]), user="zhou")
INSTANCE_CASES = {
    "other-corps-instance": OTHER_CORP,
    "other-apps-instance": OTHER_APP,
    "bystander": Caller(user="zhou"),
}
FORM_CASES = {"other-corps-form": OTHER_CORP, "other-apps-form": OTHER_APP, "bystander": Caller(user="zhou")}
PROCESS_CASES = {"other-corps-process": OTHER_CORP, "other-apps-process": OTHER_APP}
# The org routes' secret is the md5 token of corpId + userId.
ORG_CASES = {
    "corp-id-of-another-corp": Caller(corp_id="corpA"),
    "another-users-org-token": Caller(org_token=hashlib.md5(f"{CORP}zhou{TASK_API_CODE}".encode()).hexdigest().upper()),
}


def expected(route: Route, case: str) -> Outcome:
    """What ``case`` must produce on ``route``."""
    org = route.kind == "org"
    if case in route.overrides:
        return route.overrides[case]
    if case in SINGLE_SCOPES:
        return OK if SINGLE_SCOPES[case][1] == route.scope else DENIED
    table: dict[str, Outcome] = {
        "ok": OK,
        "no-token": MISSING,
        "bad-token": INVALID,
        "no-scope": DENIED,
        "read-only-token": OK if route.scope in ("Yida.Process.Read", "Yida.Task.Read") else DENIED,
        "other-corp-token": BAD_ORG_TOKEN if org else APP_GONE,
        "wrong-system-token": BAD_ORG_TOKEN if org else KEY_MISMATCH,
        "other-apps-system-token": BAD_ORG_TOKEN if org else KEY_MISMATCH,
        "unknown-user": NO_USER,
        "other-corps-user": NO_USER,
        "other-corps-instance": route.hidden,
        "other-apps-instance": route.hidden,
        "bystander": route.bystander,
        "other-corps-form": NO_FORM,
        "other-apps-form": NO_FORM,
        "other-corps-process": NO_PROCESS,
        "other-apps-process": NO_PROCESS,
        "corp-id-of-another-corp": BAD_ORG_TOKEN,
        "another-users-org-token": BAD_ORG_TOKEN,
    }
    return table[case]


def _matrix() -> list[Any]:
    params = []
    for route in ROUTES:
        cases = dict(CASES)
        cases.update(
            {"instance": INSTANCE_CASES, "form": FORM_CASES, "process": PROCESS_CASES, "org": ORG_CASES}.get(
                route.kind, {}
            )
        )
        for case, caller in cases.items():
            if route.kind == "org" and case == "wrong-system-token":
                caller = replace(caller, org_token="0" * 32)
            if route.kind == "org" and case == "other-apps-system-token":
                caller = replace(caller, org_token=hashlib.md5(b"something else").hexdigest().upper())
            params.append(pytest.param(route, case, caller, id=f"{route.invoke.__name__}-{case}"))
    return params


@pytest.mark.parametrize(("route", "case", "caller"), _matrix())
def test_auth_matrix(flow: Flow, route: Route, case: str, caller: Caller) -> None:
    ctx = Ctx(flow, caller)
    want = expected(route, case)
    if want in (OK, EMPTY):
        response, iid = route.invoke(ctx)
        assert response.status_code == 200
        if route.shows is not None:
            shown = route.shows(response.body)
            if iid is not None and route.invoke is not execute_batch_task:
                assert (iid in shown) == (want == OK), shown
            else:
                assert bool(shown) == (want == OK), shown
        return
    assert isinstance(want, tuple)
    err = expect_error(lambda: route.invoke(ctx), *want)
    if want == DENIED:
        assert err.data["accessdenieddetail"]["requiredScopes"] == [route.scope]
