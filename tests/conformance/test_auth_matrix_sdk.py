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


@dataclass
class Ctx:
    sdk: Sdk
    caller: Caller

    @property
    def token(self) -> str | None:
        if self.caller.raw_token is not None:
            return self.caller.raw_token
        return None if self.caller.credential is None else self.sdk.token(self.caller.credential)

    @property
    def app(self) -> dict[str, str]:
        return {"app_type": self.caller.app[0], "system_token": self.caller.app[1]}

    def record(self) -> str:
        """A fresh corp-A record of APP_A1's FORM-A1ALL, saved by ``record_owner`` with a full token."""
        body = self.sdk.call(
            "save_form_data",
            **APP_A1,
            user_id=self.caller.record_owner,
            form_uuid=FORM,
            form_data_json=json.dumps({"textField_t1": "权限矩阵"}),
        ).body
        return str(body.result)

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


@dataclass(frozen=True)
class Route:
    invoke: Callable[[Ctx], Any]
    scope: str
    record: bool = False  # touches one record (by id)
    form: bool = True  # names a form of the app


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
    "other-corps-record": Caller(credential=B_ALL, app=(APP_B1["app_type"], APP_B1["system_token"]), user="bAdmin"),
    # The admin of APP_A2 names APP_A2 but an APP_A1 record.
    "other-apps-record": Caller(app=(APP_A2["app_type"], APP_A2["system_token"]), user="u1"),
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
        return
    err = expect_error(lambda: route.invoke(ctx), *want)
    if want == DENIED:
        assert err.data["accessdenieddetail"]["requiredScopes"] == [route.scope]
