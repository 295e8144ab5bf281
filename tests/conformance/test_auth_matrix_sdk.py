"""The auth matrix: every route of the Yida form API × every way a caller can be wrong, through the official SDK.

Each route is one function that makes a *valid* call, given who calls (access token), which app it names
(``appType`` + ``systemToken``), which user acts and which record it touches. Each case changes one of these.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest

from tests.conformance.sdk import A_ALL, A_CONTACTS, A_READ, APP_A1, APP_A2, APP_B1, B_ALL, Sdk, expect_error

FORM = "FORM-A1ALL"
# The least a record of each form needs.
MINIMAL_DATA = {
    FORM: {"textField_t1": "矩阵"},
    "FORM-A2ONE": {"textField_x": "矩阵"},
    "FORM-B1ONE": {"textField_t1": "矩阵"},
}


@dataclass(frozen=True)
class Caller:
    """Who calls and on what: the variables the matrix changes."""

    credential: tuple[str, str] | None = A_ALL
    raw_token: str | None = None  # used instead of the credential's token when set
    app: tuple[str, str] = (APP_A1["app_type"], APP_A1["system_token"])
    user: str = "admin1"
    corp_id: str = "corpA"
    record_owner: str = "admin1"  # whose corp-A record the record routes touch
    org_token: str | None = None  # listApplication's token; default: the right one for corp_id + user
    form: str = FORM  # the formUuid the form routes name


@dataclass
class Ctx:
    sdk: Sdk
    caller: Caller
    touched: str | None = None  # the record ``record()`` made

    @property
    def token(self) -> str | None:
        if self.caller.raw_token is not None:
            return self.caller.raw_token
        return None if self.caller.credential is None else self.sdk.token(self.caller.credential)

    @property
    def app(self) -> dict[str, str]:
        return {"app_type": self.caller.app[0], "system_token": self.caller.app[1]}

    @property
    def form(self) -> str:
        return self.caller.form

    @property
    def data(self) -> str:
        """A valid formDataJson for the form the caller names."""
        return json.dumps(MINIMAL_DATA[self.caller.form])

    def record(self) -> str:
        """A fresh corp-A record of APP_A1's FORM-A1ALL, saved by ``record_owner`` with a full token."""
        body = self.sdk.call(
            "save_form_data",
            **APP_A1,
            user_id=self.caller.record_owner,
            form_uuid=FORM,
            form_data_json=json.dumps(
                {"textField_t1": "权限矩阵", "employeeField_e1": ["u3"], "tableField_tb1": [{"textField_row1": "行"}]}
            ),
        ).body
        self.touched = str(body.result)
        return self.touched

    def row_id(self, instance_id: str) -> str:
        """The rowId of the record's first sub-table row (read by the app admin)."""
        rows = self.sdk.call(
            "list_table_data_by_form_instance_id_table_id",
            instance_id,
            **APP_A1,
            user_id="admin1",
            form_uuid=FORM,
            table_field_id="tableField_tb1",
            need_row_id=True,
        ).body.data
        return str(rows[0]["rowId"])

    def only_the_record(self) -> str:
        """A ``searchCondition`` matching the record ``record()`` makes, on any form."""
        return json.dumps([{"key": "formInstanceId", "value": self.record(), "operator": "eq"}])

    def call(self, api: str, *path: str, **fields: Any) -> Any:
        return self.sdk.call(api, *path, token=self.token, **fields)


def _org_token(corp_id: str, user_id: str) -> str:
    code = {"corpA": "code-of-corp-a", "corpB": "code-of-corp-b"}[corp_id]
    return hashlib.md5((corp_id + user_id + code).encode()).hexdigest().upper()


def list_application(c: Ctx) -> Any:
    return c.call(
        "list_application",
        corp_id=c.caller.corp_id,
        user_id=c.caller.user,
        org_token=c.caller.org_token or _org_token(c.caller.corp_id, c.caller.user),
    )


def get_form_list_in_app(c: Ctx) -> Any:
    return c.call("get_form_list_in_app", **c.app, user_id=c.caller.user)


def page_form_base_infos(c: Ctx) -> Any:
    return c.call(
        "page_form_base_infos", app_key=c.app["app_type"], system_token=c.app["system_token"], user_id=c.caller.user
    )


def get_form_component_definition_list(c: Ctx) -> Any:
    return c.call(
        "get_form_component_definition_list",
        c.app["app_type"],
        FORM,
        system_token=c.app["system_token"],
        user_id=c.caller.user,
    )


def get_field_def_by_uuid(c: Ctx) -> Any:
    return c.call("get_field_def_by_uuid", **c.app, form_uuid=FORM, user_id=c.caller.user)


def save_form_data(c: Ctx) -> Any:
    return c.call(
        "save_form_data", **c.app, user_id=c.caller.user, form_uuid=FORM, form_data_json='{"textField_t1": "矩阵"}'
    )


def update_form_data(c: Ctx) -> Any:
    return c.call(
        "update_form_data",
        **c.app,
        user_id=c.caller.user,
        form_instance_id=c.record(),
        update_form_data_json='{"numberField_n1": 1}',
    )


def delete_form_data(c: Ctx) -> Any:
    return c.call("delete_form_data", **c.app, user_id=c.caller.user, form_instance_id=c.record())


def get_form_data_by_id(c: Ctx) -> Any:
    return c.call("get_form_data_by_id", c.record(), **c.app, user_id=c.caller.user)


def search_form_datas(c: Ctx) -> Any:
    return c.call("search_form_datas", **c.app, user_id=c.caller.user, form_uuid=FORM, page_size=1)


def search_form_data_id_list(c: Ctx) -> Any:
    return c.call(
        "search_form_data_id_list",
        c.app["app_type"],
        FORM,
        system_token=c.app["system_token"],
        user_id=c.caller.user,
        page_size=1,
    )


# -- issue 3: batches, upsert, advanced queries, sub-tables, change log, comments ---------------------------------


def batch_save_form_data(c: Ctx) -> Any:
    return c.call(
        "batch_save_form_data", **c.app, user_id=c.caller.user, form_uuid=c.form, form_data_json_list=[c.data]
    )


def batch_update_form_data_by_instance_id(c: Ctx) -> Any:
    return c.call(
        "batch_update_form_data_by_instance_id",
        **c.app,
        user_id=c.caller.user,
        form_uuid=c.form,
        form_instance_id_list=[c.record()],
        update_form_data_json='{"numberField_n1": 2}',
    )


def batch_update_form_data_by_instance_map(c: Ctx) -> Any:
    return c.call(
        "batch_update_form_data_by_instance_map",
        **c.app,
        user_id=c.caller.user,
        form_uuid=c.form,
        update_form_data_json_map={c.record(): '{"numberField_n1": 3}'},
    )


def batch_get_form_data_by_id_list(c: Ctx) -> Any:
    return c.call(
        "batch_get_form_data_by_id_list",
        **c.app,
        user_id=c.caller.user,
        form_uuid=c.form,
        form_instance_id_list=[c.record()],
    )


def batch_removal_by_form_instance_id_list(c: Ctx) -> Any:
    return c.call(
        "batch_removal_by_form_instance_id_list",
        **c.app,
        user_id=c.caller.user,
        form_uuid=c.form,
        form_instance_id_list=[c.record()],
    )


def create_or_update_form_data(c: Ctx, version: int = 1) -> Any:
    return c.call(
        "create_or_update_form_data",
        **c.app,
        version=version,
        user_id=c.caller.user,
        form_uuid=c.form,
        search_condition=c.only_the_record(),
        form_data_json=c.data,
    )


def search_form_data_second_generation(c: Ctx, version: int = 1) -> Any:
    return c.call(
        "search_form_data_second_generation",
        **c.app,
        version=version,
        user_id=c.caller.user,
        form_uuid=c.form,
        search_condition=c.only_the_record(),
    )


def search_form_data_second_generation_no_table_field(c: Ctx) -> Any:
    return c.call(
        "search_form_data_second_generation_no_table_field",
        **c.app,
        user_id=c.caller.user,
        form_uuid=c.form,
        search_condition=c.only_the_record(),
    )


def search_form_data_removal_table_data(c: Ctx) -> Any:
    return c.call(
        "search_form_data_removal_table_data",
        **c.app,
        user_id=c.caller.user,
        form_uuid=c.form,
        search_field_json=json.dumps({"formInstanceId": c.record()}),
    )


def list_table_data_by_form_instance_id_table_id(c: Ctx) -> Any:
    return c.call(
        "list_table_data_by_form_instance_id_table_id",
        c.record(),
        **c.app,
        user_id=c.caller.user,
        form_uuid=c.form,
        table_field_id="tableField_tb1",
    )


def search_employee_field_values(c: Ctx) -> Any:
    return c.call(
        "search_employee_field_values",
        **c.app,
        user_id=c.caller.user,
        form_uuid=c.form,
        search_field_json=json.dumps({"formInstanceId": c.record()}),
    )


def list_operation_logs(c: Ctx) -> Any:
    return c.call(
        "list_operation_logs", **c.app, user_id=c.caller.user, form_uuid=c.form, form_instance_id_list=[c.record()]
    )


def save_form_remark(c: Ctx) -> Any:
    return c.call("save_form_remark", **c.app, user_id=c.caller.user, form_instance_id=c.record(), content="矩阵评论")


def list_form_remarks(c: Ctx) -> Any:
    return c.call(
        "list_form_remarks", **c.app, user_id=c.caller.user, form_uuid=c.form, form_instance_id_list=[c.record()]
    )


# -- yida_2_0 ----------------------------------------------------------------------------------------------------


def v2_save_form_data(c: Ctx) -> Any:
    return c.call("save_form_data", **c.app, version=2, user_id=c.caller.user, form_uuid=c.form, form_data_json=c.data)


def v2_update_form_data(c: Ctx) -> Any:
    return c.call(
        "update_form_data",
        **c.app,
        version=2,
        user_id=c.caller.user,
        form_instance_id=c.record(),
        update_form_data_json='{"numberField_n1": 4}',
    )


def v2_search_form_datas(c: Ctx) -> Any:
    return c.call(
        "search_form_datas",
        **c.app,
        version=2,
        user_id=c.caller.user,
        form_uuid=c.form,
        search_field_json=json.dumps({"formInstanceId": c.record()}),
    )


def v2_search_form_data_id_list(c: Ctx) -> Any:
    return c.call(
        "search_form_data_id_list",
        c.app["app_type"],
        c.form,
        version=2,
        system_token=c.app["system_token"],
        user_id=c.caller.user,
        search_field_json=json.dumps({"formInstanceId": c.record()}),
    )


def v2_search_form_data_second_generation(c: Ctx) -> Any:
    return search_form_data_second_generation(c, version=2)


def v2_get_form_data_by_id(c: Ctx) -> Any:
    return c.call("get_form_data_by_id", c.record(), **c.app, version=2, user_id=c.caller.user)


def v2_create_or_update_form_data(c: Ctx) -> Any:
    return create_or_update_form_data(c, version=2)


def v2_get_form_component_alias_list(c: Ctx) -> Any:
    return c.call(
        "get_form_component_alias_list",
        c.app["app_type"],
        c.form,
        version=2,
        system_token=c.app["system_token"],
        user_id=c.caller.user,
    )


def v2_update_sub_table(c: Ctx) -> Any:
    return c.call(
        "update_sub_table",
        **c.app,
        version=2,
        user_id=c.caller.user,
        form_instance_id=c.record(),
        table_field_ids="tableField_tb1",
        update_form_data_json=json.dumps({"tableField_tb1": [{"textField_row1": "新行"}]}),
    )


def v2_update_sub_table_by_row_id(c: Ctx) -> Any:
    record = c.record()
    return c.call(
        "update_sub_table_by_row_id",
        **c.app,
        version=2,
        user_id=c.caller.user,
        form_instance_id=record,
        table_field_id="tableField_tb1",
        update_sub_table_data_json=json.dumps([{"rowId": c.row_id(record), "textField_row1": "改行"}]),
    )


# What a reply that lists records shows of the record ``Ctx.record`` made.
def _listed(response: Any, c: Ctx) -> bool:
    return c.touched in [d.form_instance_id for d in response.body.data]


def _in_result(response: Any, c: Ctx) -> bool:
    return c.touched in response.body.result


def _batch_got(response: Any, c: Ctx) -> bool:
    return c.touched in [d.form_instance_id for d in response.body.result]


def _employees(response: Any, c: Ctx) -> bool:
    return "u3" in [u for users in json.loads(response.body.result).values() for u in users]


def _logged(response: Any, c: Ctx) -> bool:
    return c.touched in (response.body.operation_log_map or {})


def _remarked(response: Any, c: Ctx) -> bool:
    return c.touched in (response.body.form_remark_vo_map or {})


def _ids(response: Any, c: Ctx) -> bool:
    return c.touched in response.body.data


@dataclass(frozen=True)
class Route:
    invoke: Callable[[Ctx], Any]
    scope: str
    record: bool = False  # touches one record (by id)
    form: bool = True  # names a form of the app
    # Routes that read (or upsert) many records leave out the ones the caller may not see instead of refusing:
    # ``sees(response, ctx)`` tells whether the reply shows (or changed) the record ``ctx.record()`` made.
    sees: Callable[[Any, Ctx], bool] | None = None


ROUTES = [
    Route(list_application, "Yida.App.Read", form=False),
    Route(get_form_list_in_app, "Yida.Form.Read", form=False),
    Route(page_form_base_infos, "Yida.Form.Read", form=False),
    Route(get_form_component_definition_list, "Yida.Form.Read"),
    Route(get_field_def_by_uuid, "Yida.Form.Read"),
    Route(save_form_data, "Yida.Form.Write"),
    Route(update_form_data, "Yida.Form.Write", record=True, form=False),
    Route(delete_form_data, "Yida.Form.Write", record=True, form=False),
    Route(get_form_data_by_id, "Yida.Form.Read", record=True, form=False),
    Route(search_form_datas, "Yida.Form.Read"),
    Route(search_form_data_id_list, "Yida.Form.Read"),
    Route(batch_save_form_data, "Yida.Form.Write"),
    Route(batch_update_form_data_by_instance_id, "Yida.Form.Write", record=True),
    Route(batch_update_form_data_by_instance_map, "Yida.Form.Write", record=True),
    Route(batch_get_form_data_by_id_list, "Yida.Form.Read", record=True, sees=_batch_got),
    Route(batch_removal_by_form_instance_id_list, "Yida.Form.Write", record=True),
    Route(create_or_update_form_data, "Yida.Form.Write", record=True, sees=_in_result),
    Route(search_form_data_second_generation, "Yida.Form.Read", record=True, sees=_listed),
    Route(search_form_data_second_generation_no_table_field, "Yida.Form.Read", record=True, sees=_listed),
    Route(search_form_data_removal_table_data, "Yida.Form.Read", record=True, sees=_listed),
    Route(list_table_data_by_form_instance_id_table_id, "Yida.Form.Read", record=True),
    Route(search_employee_field_values, "Yida.Form.Read", record=True, sees=_employees),
    Route(list_operation_logs, "Yida.Form.Read", record=True, sees=_logged),
    Route(save_form_remark, "Yida.Comment.Write", record=True, form=False),
    Route(list_form_remarks, "Yida.Form.Read", record=True, sees=_remarked),
    Route(v2_save_form_data, "Yida.Form.Write"),
    Route(v2_update_form_data, "Yida.Form.Write", record=True, form=False),
    Route(v2_search_form_datas, "Yida.Form.Read", record=True, sees=_listed),
    Route(v2_search_form_data_id_list, "Yida.Form.Read", record=True, sees=_ids),
    Route(v2_search_form_data_second_generation, "Yida.Form.Read", record=True, sees=_listed),
    Route(v2_get_form_data_by_id, "Yida.Form.Read", record=True, form=False),
    Route(v2_create_or_update_form_data, "Yida.Form.Write", record=True, sees=_in_result),
    Route(v2_get_form_component_alias_list, "Yida.Form.Read"),
    Route(v2_update_sub_table, "Yida.Form.Write", record=True, form=False),
    Route(v2_update_sub_table_by_row_id, "Yida.Form.Write", record=True, form=False),
]

OK = None
DENIED = ("Forbidden.AccessDenied.AccessTokenPermissionDenied", 403)
APP_GONE = ("applicationNotExist.application.notExits", 400)
KEY_MISMATCH = ("invalidParameter.parameter.accessKeyNotMatch", 400)
NO_USER = ("failure.user.userNotExist", 400)
RECORD_GONE = ("invalidState.form.dataDoesNotExistOrIsDeleted", 400)
NO_FORM = ("invalidState.form.formNotExist", 400)
BAD_ORG_TOKEN = ("invalidState.authorization.invalidAuthorizationInformation", 400)


def expected(route: Route, case: str) -> tuple[str, int] | None:
    """What ``case`` must produce on ``route`` (``None``: success)."""
    org = route.invoke is list_application
    table: dict[str, tuple[str, int] | None] = {
        "ok": OK,
        "no-token": ("AuthenticationFailed.MissingParameter", 400),
        "bad-token": ("InvalidAuthentication", 400),
        "no-scope": DENIED,
        # A read-only credential reads forms and records, writes nothing, and may not list apps.
        "read-only-token": DENIED if route.scope != "Yida.Form.Read" else OK,
        "other-corp-token": BAD_ORG_TOKEN if org else APP_GONE,
        "wrong-system-token": BAD_ORG_TOKEN if org else KEY_MISMATCH,
        "other-apps-system-token": BAD_ORG_TOKEN if org else KEY_MISMATCH,
        "unknown-user": NO_USER,
        "other-corps-user": NO_USER,
        "other-corps-record": RECORD_GONE,
        "other-apps-record": RECORD_GONE,
        "other-apps-form": NO_FORM,
        "others-record-as-member": ("noPermission.permission.deny", 400),
    }
    if route.sees is not None and case in RECORD_CASES:
        return OK  # the record is left out of the reply (asserted by the test)
    if route.invoke is list_table_data_by_form_instance_id_table_id and case == "other-apps-form":
        return RECORD_GONE  # the record (in the path) is looked up before the form the query names
    return table[case]


CASES: dict[str, Caller] = {
    "ok": Caller(),
    "no-token": Caller(credential=None),
    "bad-token": Caller(raw_token="not-a-real-token"),
    "no-scope": Caller(credential=A_CONTACTS),
    "read-only-token": Caller(credential=A_READ),
    # Corp B's token naming corp A's app (or, for listApplication, corp A's corpId).
    "other-corp-token": Caller(credential=B_ALL),
    "wrong-system-token": Caller(app=("APP_A1", "ST-WRONG")),
    "other-apps-system-token": Caller(app=("APP_A1", APP_A2["system_token"])),
    "unknown-user": Caller(user="ghost"),
    "other-corps-user": Caller(user="bAdmin"),
}
# Cases that only make sense where the route touches a record or a form.
RECORD_CASES: dict[str, Caller] = {
    # Corp B, fully authenticated on its own app, asks for a corp-A record id.
    "other-corps-record": Caller(
        credential=B_ALL, app=(APP_B1["app_type"], APP_B1["system_token"]), user="bAdmin", form="FORM-B1ONE"
    ),
    # The admin of APP_A2 names APP_A2 (and its form) but an APP_A1 record.
    "other-apps-record": Caller(app=(APP_A2["app_type"], APP_A2["system_token"]), user="u1", form="FORM-A2ONE"),
    # u2 (no admin) touches admin1's record.
    "others-record-as-member": Caller(user="u2"),
}
FORM_CASES: dict[str, Caller] = {
    "other-apps-form": Caller(app=(APP_A2["app_type"], APP_A2["system_token"]), user="u1"),
}


def _matrix() -> list[Any]:
    params = []
    for route in ROUTES:
        cases = dict(CASES)
        if route.record:
            cases.update(RECORD_CASES)
        if route.form:
            cases.update(FORM_CASES)
        for case, caller in cases.items():
            # listApplication has no systemToken: its secret is the org token of corpId + userId.
            if route.invoke is list_application and case == "wrong-system-token":
                caller = replace(caller, org_token="0" * 32)
            if route.invoke is list_application and case == "other-apps-system-token":
                caller = replace(caller, org_token=_org_token("corpA", "u1"))  # another user's token
            params.append(pytest.param(route, case, caller, id=f"{route.invoke.__name__}-{case}"))
    return params


@pytest.mark.parametrize(("route", "case", "caller"), _matrix())
def test_auth_matrix(sdk: Sdk, route: Route, case: str, caller: Caller) -> None:
    ctx = Ctx(sdk, caller)
    want = expected(route, case)
    if want is None:
        response = route.invoke(ctx)
        assert response.status_code == 200
        if route.sees is not None:
            # Only the caller who may see the record finds it; everyone else's reply leaves it out.
            assert route.sees(response, ctx) is (case not in RECORD_CASES), ctx.touched
        return
    err = expect_error(lambda: route.invoke(ctx), *want)
    if want == DENIED:
        assert err.data["accessdenieddetail"]["requiredScopes"] == [route.scope]
