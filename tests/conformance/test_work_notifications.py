"""Work notifications (oapi ``/topapi/message/corpconversation/*``) over plain HTTP, with JSON bodies and with
form-urlencoded bodies (both are sent in the wild): every msgtype, the send's result, progress and recall, the auth
matrix, corp isolation and bad input that writes nothing.

The community ``dingtalk-sdk`` sends these calls through the TOP gateway (``eco.taobao.com/router/rest``), which
Zida does not serve, so plain HTTP stands in for it here."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conformance.conftest import run_sql
from tests.conformance.sdk import A_ALL, A_READ, B_ALL, Sdk
from tests.conftest import ServerProcess, load_bundle_file

A_NOTIFY = ("keyA-notify", "secret-a-notify-0001")
A_TODO = ("keyA-todo", "secret-a-todo-00001")
BASE = "/topapi/message/corpconversation/"
MESSAGES = {
    "text": {"content": "月报已生成"},
    "image": {"media_id": "@lADOADmaWMzazQKA"},
    "voice": {"media_id": "@lATOADmaWMzazQKA", "duration": "10"},
    "file": {"media_id": "@lAJOADmaWMzazQKA"},
    "link": {"messageUrl": "https://a.example/r", "picUrl": "@lADOADmaWMzazQKA", "title": "月报", "text": "请查看"},
    "oa": {
        "message_url": "https://a.example/oa",
        "pc_message_url": "https://a.example/oa?pc",
        "head": {"bgcolor": "FFBBBBBB", "text": "头部"},
        "status_bar": {"status_value": "进行中", "status_bg": "0xFFF65E5E"},
        "body": {"title": "报销", "form": [{"key": "姓名:", "value": "张三"}], "rich": {"num": "15.6", "unit": "元"}},
    },
    "markdown": {"title": "周报", "text": "# 本周\n- 完成"},
    "action_card": {"title": "审批", "markdown": "请审批", "single_title": "查看", "single_url": "https://a.example"},
}


class Oapi:
    """oapi calls as clients make them: ``?access_token=`` and a JSON or form body."""

    def __init__(self, server: ServerProcess, sdk: Sdk, url: str) -> None:
        self.base = f"http://{server.endpoint}"
        self.sdk = sdk
        self.url = url
        self.http = httpx.Client(timeout=10)

    def post(
        self,
        path: str,
        body: dict[str, Any],
        *,
        form: bool = False,
        credential: tuple[str, str] | None = A_NOTIFY,
        token: str | None = None,
    ) -> dict[str, Any]:
        params = {"access_token": token if token is not None else self.sdk.token(credential)} if credential else {}
        if form:  # the Java SDK's and the docs' style: every value a string, msg as JSON text
            data = {
                k: json.dumps(v, ensure_ascii=False)
                if isinstance(v, dict | list)
                else str(v).lower()
                if isinstance(v, bool)
                else str(v)
                for k, v in body.items()
            }
            response = self.http.post(self.base + BASE + path, params=params, data=data)
        else:
            response = self.http.post(self.base + BASE + path, params=params, json=body)
        assert response.status_code == 200, response.text  # oapi answers errors with HTTP 200 too
        answer: dict[str, Any] = response.json()
        assert answer.get("request_id"), answer
        return answer

    def count(self) -> tuple[int, ...]:
        return tuple(
            int(run_sql(self.url, f"SELECT count(*) AS n FROM {t}")[0]["n"])
            for t in ("message", "message_inbox", "audit_log", "outbox_event")
        )

    def inbox(self, user: str, task_id: int) -> list[dict[str, Any]]:
        return run_sql(
            self.url,
            "SELECT i.read_at, m.msgtype, m.content FROM message_inbox i JOIN message m ON m.id = i.message_pk"
            " JOIN corp c ON c.id = i.corp_pk WHERE c.corp_id = 'corpA' AND i.user_id = :u AND m.id = :t",
            {"u": user, "t": task_id},
        )


@pytest.fixture(scope="module")
def oapi(server: ServerProcess, sdk: Sdk, loaded_url: str) -> Iterator[Oapi]:
    client = Oapi(server, sdk, loaded_url)
    yield client
    client.http.close()


@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
@pytest.mark.parametrize("kind", list(MESSAGES))
def test_every_msgtype_lands_in_the_inbox(oapi: Oapi, kind: str, form: bool) -> None:
    msg = {"msgtype": kind, kind: MESSAGES[kind]}
    sent = oapi.post("asyncsend_v2", {"agent_id": 123, "userid_list": "u1,u2", "msg": msg}, form=form)
    assert sent["errcode"] == 0 and sent["errmsg"] == "ok" and isinstance(sent["task_id"], int)
    for user in ("u1", "u2"):
        (row,) = oapi.inbox(user, sent["task_id"])
        content = row["content"] if isinstance(row["content"], dict) else json.loads(row["content"])
        assert (row["msgtype"], content, row["read_at"]) == (kind, MESSAGES[kind], None)


def test_departments_unknown_receivers_result_progress_and_recall(oapi: Oapi) -> None:
    msg = json.dumps({"msgtype": "text", "text": {"content": "部门通知 " + secrets.token_hex(3)}})
    sent = oapi.post(
        "asyncsend_v2",
        {
            "agent_id": "77",
            "userid_list": "u1,ghost,u1",
            "dept_id_list": "20,424242",
            "to_all_user": "false",
            "msg": msg,
        },
        form=True,
    )
    task = sent["task_id"]
    result = oapi.post("getsendresult", {"agent_id": 77, "task_id": task})["send_result"]
    assert result["invalid_user_id_list"] == ["ghost"] and result["invalid_dept_id_list"] == [424242]
    assert result["unread_user_id_list"] == ["u1", "u2", "u3"]  # dept 20: u2, u3 (and sub-departments)
    assert result["read_user_id_list"] == [] and result["failed_user_id_list"] == [] and result["forbidden_list"] == []
    progress = oapi.post("getsendprogress", {"agent_id": "77", "task_id": str(task)}, form=True)["progress"]
    assert progress == {"progress_in_percent": 100, "status": 2}
    # another agent_id names another send
    assert oapi.post("getsendresult", {"agent_id": 78, "task_id": task})["errcode"] == 40056
    assert oapi.post("recall", {"agent_id": 78, "msg_task_id": task})["errcode"] == 40056

    assert oapi.post("recall", {"agent_id": 77, "msg_task_id": task})["errcode"] == 0
    recalled = run_sql(oapi.url, "SELECT recalled_at FROM message WHERE id = :t", {"t": task})
    assert recalled[0]["recalled_at"] is not None
    assert oapi.post("recall", {"agent_id": 77, "msg_task_id": task})["errcode"] == 0  # again: nothing changes

    everyone = oapi.post(
        "asyncsend_v2", {"agent_id": 77, "to_all_user": True, "msg": {"msgtype": "text", "text": {"content": "全员"}}}
    )
    result = oapi.post("getsendresult", {"agent_id": 77, "task_id": everyone["task_id"]})["send_result"]
    assert result["unread_user_id_list"] == ["admin1", "u1", "u2", "u3"]


@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_bad_sends_are_40035_and_write_nothing(oapi: Oapi, form: bool) -> None:
    text = {"msgtype": "text", "text": {"content": "x"}}
    before = oapi.count()
    bad: list[dict[str, Any]] = [
        {"agent_id": 1, "userid_list": "u1"},  # no msg
        {"agent_id": 1, "userid_list": "ghost1,ghost2", "dept_id_list": "424242", "msg": text},  # reaches nobody
        {"agent_id": 1, "msg": text},  # no receiver named
        {"agent_id": 1, "userid_list": "u1", "msg": {"msgtype": "fax", "fax": {}}},
        {"agent_id": 1, "userid_list": "u1", "msg": {"msgtype": "text", "text": {}}},
        {"agent_id": 1, "userid_list": "u1", "msg": {"msgtype": "link", "link": {"messageUrl": "https://x"}}},
        {
            "agent_id": 1,
            "userid_list": "u1",
            "msg": {"msgtype": "oa", "oa": {"message_url": "x", "head": "h", "body": {"title": "t"}}},
        },
        {
            "agent_id": 1,
            "userid_list": "u1",
            "msg": {"msgtype": "action_card", "action_card": {"title": "t", "markdown": "m"}},
        },
        {"agent_id": 1, "userid_list": "u1", "msg": {"msgtype": "text", "text": {"content": "长" * 700}}},
        {"agent_id": 1, "userid_list": "u1", "dept_id_list": "ten", "msg": text},
        {"userid_list": "u1", "msg": text},  # no agent_id
        {"agent_id": "x1", "userid_list": "u1", "msg": text},
    ]
    for body in bad:
        answer = oapi.post("asyncsend_v2", body, form=form)
        assert answer["errcode"] == 40035, (body, answer)
    assert oapi.post("asyncsend_v2", {"agent_id": 1, "userid_list": "u1", "msg": "{not json"})["errcode"] == 40035
    assert oapi.count() == before
    for path, body in (
        ("getsendresult", {"agent_id": 1, "task_id": 99_999_999}),
        ("getsendprogress", {"agent_id": 1}),
        ("recall", {"agent_id": 1, "msg_task_id": "abc"}),
    ):
        assert oapi.post(path, body, form=form)["errcode"] == 40035


def test_the_auth_matrix_and_corp_isolation(oapi: Oapi) -> None:
    text = {"msgtype": "text", "text": {"content": "x"}}
    task = oapi.post("asyncsend_v2", {"agent_id": 5, "userid_list": "u1", "msg": text})["task_id"]
    routes = {
        "asyncsend_v2": {"agent_id": 5, "userid_list": "u1", "msg": text},
        "getsendresult": {"agent_id": 5, "task_id": task},
        "getsendprogress": {"agent_id": 5, "task_id": task},
        "recall": {"agent_id": 5, "msg_task_id": task},
    }
    for path, body in routes.items():
        missing = oapi.post(path, body, credential=None)
        assert (missing["errcode"], missing["sub_code"], missing["sub_msg"]) == (88, "40000", "access_token is blank")
        bad = oapi.post(path, body, token="not-a-token")
        assert (bad["errcode"], bad["sub_code"]) == (88, "40014"), bad
        for credential in (A_READ, A_TODO):
            denied = oapi.post(path, body, credential=credential)
            assert (denied["errcode"], denied["sub_code"]) == (88, "60011"), denied
        # corp B: corp A's users are not its users, corp A's send is not its send
        assert oapi.post(path, body, credential=B_ALL)["errcode"] == 40035
        # another credential of corp A did not send it either
        if path != "asyncsend_v2":
            assert oapi.post(path, body, credential=A_ALL)["errcode"] == 40035
    for path, body in routes.items():
        assert oapi.post(path, body)["errcode"] == 0
    assert (
        oapi.post("asyncsend_v2", {"agent_id": 5, "userid_list": "bAdmin", "msg": text}, credential=B_ALL)["errcode"]
        == 0
    )


def _load_corp_of_101(url: str, directory: Path) -> None:
    """corpMany: 101 users, an app credential that sends work notifications (its own corp: nobody else counts)."""
    bundle = {
        "corp": {"corpId": "corpMany", "name": "百人公司"},
        "departments": [{"deptId": 1, "name": "百人公司"}],
        "users": [{"userId": f"m{n:03d}", "name": f"员工{n}", "departments": [1]} for n in range(101)],
        "credentials": [
            {"appKey": "many-notify", "appSecret": "many-secret-notify1", "scopes": ["Message.WorkNotify.Send"]}
        ],
    }
    path = directory / "corp_many.yaml"
    path.write_text(yaml.safe_dump(bundle, allow_unicode=True), encoding="utf-8")
    load_bundle_file(url, path)


def test_getsendresult_keeps_dingtalks_limits_of_24_hours_and_100_receivers(oapi: Oapi, tmp_path: Path) -> None:
    _load_corp_of_101(oapi.url, tmp_path)
    many = ("many-notify", "many-secret-notify1")
    text = {"msgtype": "text", "text": {"content": "全员通知"}}
    everyone = oapi.post("asyncsend_v2", {"agent_id": 9, "to_all_user": True, "msg": text}, credential=many)
    refused = oapi.post("getsendresult", {"agent_id": 9, "task_id": everyone["task_id"]}, credential=many)
    assert refused["errcode"] == 40035 and "at most 100" in refused["errmsg"], refused
    progress = oapi.post("getsendprogress", {"agent_id": 9, "task_id": everyone["task_id"]}, credential=many)
    assert progress["progress"]["status"] == 2
    rows = run_sql(
        oapi.url, "SELECT count(*) AS n FROM message_inbox WHERE message_pk = :t", {"t": everyone["task_id"]}
    )
    assert rows[0]["n"] == 101  # delivered all the same

    old = oapi.post("asyncsend_v2", {"agent_id": 9, "userid_list": "u1", "msg": text})["task_id"]
    assert oapi.post("getsendresult", {"agent_id": 9, "task_id": old})["send_result"]["unread_user_id_list"] == ["u1"]
    run_sql(oapi.url, "UPDATE message SET created_at = created_at - 86400001 WHERE id = :t", {"t": old})
    expired = oapi.post("getsendresult", {"agent_id": 9, "task_id": old})
    assert expired["errcode"] == 40035 and "24 hours" in expired["errmsg"], expired
