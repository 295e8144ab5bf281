"""To-dos through the official ``alibabacloud_dingtalk.todo_1_0`` client: every route, its auth matrix, corp
isolation, bad input that writes nothing, and the to-dos approvals keep for their tasks."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alibabacloud_dingtalk.todo_1_0 import models as todo_models
from alibabacloud_dingtalk.todo_1_0.client import Client as TodoClient
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_util import models as util_models

from tests.conformance.conftest import run_sql
from tests.conformance.sdk import A_ALL, A_READ, B_ALL, Sdk, expect_error
from tests.conformance.workflow.conftest import FLOW_ALL, Flow
from tests.conftest import ServerProcess, load_fixture_bundle

A_TODO = ("keyA-todo", "secret-a-todo-00001")
A_NOTIFY = ("keyA-notify", "secret-a-notify-0001")
MISSING = ("AuthenticationFailed.MissingParameter", 400)
INVALID = ("InvalidAuthentication", 400)
DENIED = ("Forbidden.AccessDenied.AccessTokenPermissionDenied", 403)
UNKNOWN_USER = ("paramError", 400)
NOT_FOUND = ("invalidParameter.todo.notExist", 400)


class Todos:
    """The todo_1_0 client against the live server, with a helper that calls any ``*_with_options``."""

    def __init__(self, server: ServerProcess, sdk: Sdk, url: str) -> None:
        self.client = TodoClient(open_api_models.Config(protocol="http"))
        self.client._endpoint = server.endpoint
        self.sdk = sdk
        self.url = url

    def call(
        self, api: str, *path: str, token: str | None = "default", credential: tuple[str, str] = A_TODO, **fields: Any
    ) -> Any:
        model = "".join(p.capitalize() for p in api.split("_"))
        request_model = getattr(todo_models, model + "Request", None)  # GET calls take none
        request = [request_model(**fields)] if request_model is not None else []
        headers = getattr(todo_models, model + "Headers")()
        if token == "default":
            token = self.sdk.token(credential)
        if token is not None:
            headers.x_acs_dingtalk_access_token = token
        return getattr(self.client, api + "_with_options")(*path, *request, headers, util_models.RuntimeOptions())

    def union(self, corp: str, user_id: str) -> str:
        """A user's unionId (the fixtures leave them generated)."""
        rows = run_sql(
            self.url,
            "SELECT u.union_id FROM org_user u JOIN corp c ON c.id = u.corp_pk WHERE c.corp_id = :c AND u.user_id = :u",
            {"c": corp, "u": user_id},
        )
        return str(rows[0]["union_id"])

    def count(self, table: str = "todo_task") -> int:
        """Rows of a table (nothing-written checks)."""
        return int(run_sql(self.url, f"SELECT count(*) AS n FROM {table}")[0]["n"])


@pytest.fixture(scope="module")
def todos(server: ServerProcess, sdk: Sdk, loaded_url: str) -> Iterator[Todos]:
    yield Todos(server, sdk, loaded_url)


@pytest.fixture(scope="module")
def people(todos: Todos) -> dict[str, str]:
    """unionIds of corp A's users and corp B's admin."""
    out = {u: todos.union("corpA", u) for u in ("admin1", "u1", "u2", "u3")}
    out["bAdmin"] = todos.union("corpB", "bAdmin")
    return out


def _create(todos: Todos, people: dict[str, str], creator: str = "u1", **fields: Any) -> Any:
    body = {
        "subject": "报销单待处理",
        "executor_ids": [people["u2"], people["u3"]],
        "participant_ids": [people["admin1"]],
        "detail_url": todo_models.CreateTodoTaskRequestDetailUrl(app_url="https://a.example/t", pc_url="/t"),
        **fields,
    }
    return todos.call("create_todo_task", people[creator], **body).body


def test_a_todo_is_created_read_changed_and_deleted(todos: Todos, people: dict[str, str]) -> None:
    source = "src-" + secrets.token_hex(4)
    created = _create(
        todos,
        people,
        source_id=source,
        description="请在周五前处理",
        due_time=1_900_000_000_000,
        priority=20,
        operator_id=people["u1"],
        content_field_list=[todo_models.CreateTodoTaskRequestContentFieldList(field_key="金额", field_value="12")],
        notify_configs=todo_models.CreateTodoTaskRequestNotifyConfigs(ding_notify="1"),
        is_only_show_executor=True,
        todo_type="TODO",
    )
    assert created.id.startswith("TODO") and len(created.request_id) == 32
    assert (created.subject, created.description, created.due_time, created.priority) == (
        "报销单待处理",
        "请在周五前处理",
        1_900_000_000_000,
        20,
    )
    assert created.executor_ids == [people["u2"], people["u3"]]
    assert created.participant_ids == [people["admin1"]]
    assert created.creator_id == people["u1"] and created.done is False and created.source_id == source
    assert (created.detail_url.app_url, created.detail_url.pc_url) == ("https://a.example/t", "/t")
    assert [(f.field_key, f.field_value) for f in created.content_field_list] == [("金额", "12")]
    assert created.notify_configs.ding_notify == "1" and created.is_only_show_executor is True

    # Everyone on it reads it, by id and by source id; someone else does not.
    for user in ("u1", "u2", "admin1"):
        got = todos.call("get_todo_task", people[user], created.id).body
        assert (got.id, got.subject, got.tenant_id, got.tenant_type) == (created.id, "报销单待处理", "corpA", "org")
    by_source = todos.call("get_todo_task_by_source_id", people["u2"], source).body
    assert by_source.id == created.id
    expect_error(lambda: todos.call("get_todo_task", people["u3"], created.id + "X"), *NOT_FOUND)

    # Update: subject, participants, and done — which marks every executor done.
    result = todos.call(
        "update_todo_task",
        people["u1"],
        created.id,
        subject="报销单（已补材料）",
        participant_ids=[],
        operator_id=people["u2"],
    ).body
    assert result.result is True
    got = todos.call("get_todo_task", people["u1"], created.id).body
    assert (got.subject, got.participant_ids, got.modifier_id, got.done) == (
        "报销单（已补材料）",
        [],
        people["u2"],
        False,
    )
    expect_error(lambda: todos.call("get_todo_task", people["admin1"], created.id), *NOT_FOUND)

    # Executor status: the to-do is done when every executor is.
    def status(user: str, done: bool) -> Any:
        entry = todo_models.UpdateTodoTaskExecutorStatusRequestExecutorStatusList(id=people[user], is_done=done)
        return todos.call("update_todo_task_executor_status", people["u2"], created.id, executor_status_list=[entry])

    assert status("u2", True).body.result is True
    assert todos.call("get_todo_task", people["u1"], created.id).body.done is False
    status("u3", True)
    done = todos.call("get_todo_task", people["u1"], created.id).body
    assert done.done is True and done.finish_time >= done.created_time
    status("u3", False)
    assert todos.call("get_todo_task", people["u1"], created.id).body.done is False
    todos.call("update_todo_task", people["u3"], created.id, done=True)
    assert todos.call("get_todo_task", people["u1"], created.id).body.done is True

    # Delete: gone for everyone.
    deleted = todos.call("delete_todo_task", people["u3"], created.id, operator_id=people["u3"])
    assert deleted.body.result is True
    assert deleted.body.request_id == deleted.headers["x-acs-request-id"]  # as the platform answers
    expect_error(lambda: todos.call("get_todo_task", people["u1"], created.id), *NOT_FOUND)
    expect_error(lambda: todos.call("get_todo_task_by_source_id", people["u1"], source), *NOT_FOUND)


def test_the_query_pages_by_role_state_and_order(todos: Todos, people: dict[str, str]) -> None:
    tag = secrets.token_hex(3)
    made = [
        _create(
            todos,
            people,
            subject=f"q-{tag}-{n}",
            due_time=1_900_000_000_000 + n,
            executor_ids=[people["u3"]],
            participant_ids=[people["u2"]] if n % 2 else [],
        )
        for n in range(5)
    ]
    todos.call("update_todo_task", people["u1"], made[0].id, done=True)

    def query(user: str = "u3", **fields: Any) -> Any:
        return todos.call("query_org_todo_by_user", people[user], subject=f"q-{tag}", **fields).body

    first = query(max_results=2, role_types=[["executor"]])
    assert [c.task_id for c in first.todo_cards] == [made[4].id, made[3].id]  # newest first
    assert first.max_results == 2 and first.next_token
    from_zero = query(max_results=2, role_types=[["executor"]], next_token="0")  # the default clients send
    assert [t.task_id for t in from_zero.todo_cards] == [t.task_id for t in first.todo_cards]
    second = query(max_results=2, role_types=[["executor"]], next_token=first.next_token)
    third = query(max_results=2, role_types=[["executor"]], next_token=second.next_token)
    seen = [c.task_id for page in (first, second, third) for c in page.todo_cards]
    assert seen == [t.id for t in reversed(made)] and third.next_token is None
    card = first.todo_cards[0]
    assert (card.subject, card.is_done, card.creator_id, card.todo_type) == (f"q-{tag}-4", False, people["u1"], "TODO")
    assert card.detail_url.app_url == "https://a.example/t"

    assert [c.task_id for c in query(is_done=True).todo_cards] == [made[0].id]
    shouted = todos.call("query_org_todo_by_user", people["u3"], subject=f"Q-{tag.upper()}", is_done=True).body
    assert [c.task_id for c in shouted.todo_cards] == [made[0].id]  # case ignored, on both databases
    undone = query(is_done=False, order_by="dueTime", order_direction="asc").todo_cards
    assert [c.task_id for c in undone] == [t.id for t in made[1:]]
    # roles: a participant sees only the odd ones; executor AND participant none (u2 executes none of them)
    assert [c.task_id for c in query("u2", role_types=[["participant"]]).todo_cards] == [made[3].id, made[1].id]
    assert query("u2", role_types=[["executor", "participant"]]).todo_cards == []
    assert len(query("u1", role_types=[["creator"]]).todo_cards) == 5
    assert query("u1", role_types=[["executor"], ["participant"]]).todo_cards == []
    expect_error(lambda: query(role_types=[["boss"]]), "invalidParameter.parameter.error", 400)
    expect_error(lambda: query(next_token="not-a-cursor"), "invalidParameter.parameter.error", 400)


def test_bad_input_is_refused_and_writes_nothing(todos: Todos, people: dict[str, str]) -> None:
    source = "dup-" + secrets.token_hex(4)
    made = _create(todos, people, source_id=source)
    before = (todos.count(), todos.count("todo_member"), todos.count("audit_log"), todos.count("outbox_event"))
    stranger = "union-" + secrets.token_hex(8)
    cases: list[tuple[Callable[[], Any], tuple[str, int]]] = [
        (lambda: _create(todos, people, executor_ids=[people["u2"], stranger]), UNKNOWN_USER),
        (lambda: _create(todos, people, participant_ids=[stranger]), UNKNOWN_USER),
        (lambda: todos.call("create_todo_task", stranger, subject="x"), UNKNOWN_USER),
        (lambda: _create(todos, people, operator_id=stranger), UNKNOWN_USER),
        (lambda: _create(todos, people, source_id=source), ("todo.taskCreate.paramError", 400)),
        (lambda: _create(todos, people, subject=""), ("invalidParameter.parameter.parameterIsEmpty", 400)),
        (lambda: _create(todos, people, subject="长" * 1025), ("invalidParameter.parameter.error", 400)),
        (lambda: _create(todos, people, priority=15), ("invalidParameter.parameter.error", 400)),
        (lambda: _create(todos, people, creator_id=people["u2"]), ("invalidParameter.parameter.error", 400)),
        (lambda: _create(todos, people, todo_type="LATER"), ("invalidParameter.parameter.error", 400)),
        (
            lambda: _create(
                todos, people, detail_url=todo_models.CreateTodoTaskRequestDetailUrl(app_url="javascript:1")
            ),
            ("invalidParameter.parameter.error", 400),
        ),
        (lambda: todos.call("update_todo_task", people["u1"], made.id, executor_ids=[stranger]), UNKNOWN_USER),
        (
            lambda: todos.call("update_todo_task", people["u1"], made.id, subject=" "),
            ("invalidParameter.parameter.parameterIsEmpty", 400),
        ),
        (lambda: todos.call("update_todo_task", people["u1"], "TODO-NOPE", subject="x"), NOT_FOUND),
        (
            lambda: todos.call(
                "update_todo_task_executor_status",
                people["u1"],
                made.id,
                executor_status_list=[
                    todo_models.UpdateTodoTaskExecutorStatusRequestExecutorStatusList(id=people["admin1"], is_done=True)
                ],
            ),
            ("invalidParameter.parameter.error", 400),
        ),
        (
            lambda: todos.call("update_todo_task_executor_status", people["u1"], made.id, executor_status_list=[]),
            ("invalidParameter.parameter.parameterIsEmpty", 400),
        ),
        (lambda: todos.call("delete_todo_task", people["u1"], made.id, operator_id=stranger), UNKNOWN_USER),
    ]
    for call, (code, status) in cases:
        expect_error(call, code, status)
    assert (todos.count(), todos.count("todo_member"), todos.count("audit_log"), todos.count("outbox_event")) == before
    assert todos.call("get_todo_task", people["u1"], made.id).body.subject == "报销单待处理"


def test_a_dingtalk_client_link_is_a_detail_url_and_a_refusal_names_the_wire_parameter(
    todos: Todos, people: dict[str, str]
) -> None:
    """``dingtalk://dingtalkclient/page/link?url=…&pc_slide=true`` is how integrations open a to-do in the client's
    side panel; a ``javascript:`` address stays refused, and the message names ``detailUrl.appUrl``."""
    link = "dingtalk://dingtalkclient/page/link?url=https%3A%2F%2Fa.example%2Ft&pc_slide=true"
    detail = todo_models.CreateTodoTaskRequestDetailUrl(app_url=link, pc_url=link)
    created = _create(todos, people, detail_url=detail)
    assert (created.detail_url.app_url, created.detail_url.pc_url) == (link, link)
    read = todos.call("get_todo_task", people["u1"], created.id).body
    assert read.detail_url.pc_url == link
    err = expect_error(
        lambda: _create(todos, people, detail_url=todo_models.CreateTodoTaskRequestDetailUrl(app_url="javascript:1")),
        "invalidParameter.parameter.error",
        400,
    )
    assert "detailUrl.appUrl must be" in str(err.data.get("message")), err.data


def test_the_auth_matrix_of_every_route(todos: Todos, people: dict[str, str]) -> None:
    made = _create(todos, people, source_id="auth-" + secrets.token_hex(4))
    u1 = people["u1"]
    routes: dict[str, tuple[str, Callable[..., Any]]] = {
        "create": ("Todo.Todo.Write", lambda **kw: todos.call("create_todo_task", u1, subject="a", **kw)),
        "get": ("Todo.Todo.Read", lambda **kw: todos.call("get_todo_task", u1, made.id, **kw)),
        "by source": (
            "Todo.Todo.Read",
            lambda **kw: todos.call("get_todo_task_by_source_id", u1, made.source_id, **kw),
        ),
        "update": ("Todo.Todo.Write", lambda **kw: todos.call("update_todo_task", u1, made.id, subject="b", **kw)),
        "status": (
            "Todo.Todo.Write",
            lambda **kw: todos.call(
                "update_todo_task_executor_status",
                u1,
                made.id,
                executor_status_list=[
                    todo_models.UpdateTodoTaskExecutorStatusRequestExecutorStatusList(id=people["u2"], is_done=False)
                ],
                **kw,
            ),
        ),
        "query": ("Todo.Todo.Read", lambda **kw: todos.call("query_org_todo_by_user", u1, **kw)),
        "delete": ("Todo.Todo.Write", lambda **kw: todos.call("delete_todo_task", people["u3"], made.id, **kw)),
    }
    for permission, call in routes.values():
        _matrix(permission, call)
    # corp B's own user cannot reach corp A's to-do either
    expect_error(lambda: todos.call("get_todo_task", people["bAdmin"], made.id, credential=B_ALL), *NOT_FOUND)


def _matrix(permission: str, call: Callable[..., Any]) -> None:
    """One route: no token, a bad token, tokens without its permission point, corp B's token, then success."""
    expect_error(lambda: call(token=None), *MISSING)
    expect_error(lambda: call(token="not-a-token"), *INVALID)
    denied = expect_error(lambda: call(credential=A_READ), *DENIED)
    assert permission in str(denied.data)
    expect_error(lambda: call(credential=A_NOTIFY), *DENIED)
    # corp B's token: corp A's users are unknown to it
    expect_error(lambda: call(credential=B_ALL), *UNKNOWN_USER)
    call(credential=A_ALL)  # the all-scopes credential of the corp succeeds


# ------------------------------------------------------------------------------------------------ approvals


@pytest.fixture(scope="module")
def flow(server: ServerProcess, loaded_url: str) -> Flow:
    load_fixture_bundle(loaded_url, "corp_flow.yaml")
    return Flow(server, loaded_url)


def test_an_approval_task_keeps_its_assignees_todo(todos: Todos, flow: Flow) -> None:
    union = {u: todos.union("corpFlow", u) for u in ("li", "wang", "chen")}
    instance = flow.start("FORM-FLOW-TWO", {"textField_title": "待办联动 " + secrets.token_hex(3)})
    task = flow.task_of(instance, "wang")
    title = flow.instance(instance).title

    mine = todos.call("get_todo_task_by_source_id", union["wang"], str(task), credential=FLOW_ALL).body
    assert (mine.subject, mine.done, mine.source, mine.executor_ids, mine.creator_id) == (
        title,
        False,
        "approval",
        [union["wang"]],
        union["li"],
    )
    assert mine.detail_url.pc_url == f"/console/approvals/{instance}"
    cards = todos.call(
        "query_org_todo_by_user", union["wang"], is_done=False, role_types=[["executor"]], credential=FLOW_ALL
    ).body.todo_cards
    assert mine.id in [c.task_id for c in cards]
    # the originator sees it as its creator
    assert todos.call("get_todo_task", union["li"], mine.id, credential=FLOW_ALL).body.id == mine.id
    # it follows its task: no client changes it
    for call in (
        lambda: todos.call("update_todo_task", union["wang"], mine.id, done=True, credential=FLOW_ALL),
        lambda: todos.call("delete_todo_task", union["wang"], mine.id, credential=FLOW_ALL),
    ):
        expect_error(call, "forbidden.todo.followsApproval", 400)

    flow.execute(instance, "wang")
    done = todos.call("get_todo_task", union["wang"], mine.id, credential=FLOW_ALL).body
    assert done.done is True and done.finish_time
    nxt = flow.task_of(instance, "chen")
    chen = todos.call("get_todo_task_by_source_id", union["chen"], str(nxt), credential=FLOW_ALL).body
    assert chen.done is False and chen.id != mine.id

    flow.execute(instance, "chen", result="DISAGREE")
    assert todos.call("get_todo_task", union["chen"], chen.id, credential=FLOW_ALL).body.done is True
    # the notifications: each assignee when his task came, the originator when it ended
    rows = flow.sql(
        "SELECT i.user_id, m.content FROM message_inbox i JOIN message m ON m.id = i.message_pk"
        " WHERE m.source_id = :i ORDER BY i.id",
        {"i": instance},
    )
    texts = [(r["user_id"], str(r["content"])) for r in rows]
    assert [u for u, _ in texts] == ["wang", "chen", "li"]
    assert "待审批" in texts[0][1] and "已拒绝" in texts[2][1] and title in texts[2][1]


def test_a_transferred_or_terminated_task_completes_its_todo(todos: Todos, flow: Flow) -> None:
    union = {u: todos.union("corpFlow", u) for u in ("wang", "li")}
    instance = flow.start("FORM-FLOW-TWO", {"textField_title": "终止 " + secrets.token_hex(3)})
    task = flow.task_of(instance, "wang")
    todo = todos.call("get_todo_task_by_source_id", union["wang"], str(task), credential=FLOW_ALL).body
    flow.call("terminate_instance", user="li", process_instance_id=instance)
    assert todos.call("get_todo_task", union["wang"], todo.id, credential=FLOW_ALL).body.done is True
    rows = flow.sql(
        "SELECT i.user_id, m.content FROM message_inbox i JOIN message m ON m.id = i.message_pk"
        " WHERE m.source_id = :i AND i.user_id = 'li'",
        {"i": instance},
    )
    assert len(rows) == 1 and "已终止" in str(rows[0]["content"])
