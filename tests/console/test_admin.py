"""The console's admin pages over plain HTTP: people (create, edit, deactivate with a successor, reactivate),
departments and roles (create, edit, delete, with the org actions' rules), credential rotation (the old secret stops
working, the new one gets a token from the DingTalk dialect) and event subscriptions with their delivery state."""

from __future__ import annotations

import re
import time

import httpx

from tests.conformance.events.receiver import AES_KEY, TOKEN, Receiver
from tests.console.conftest import OTHER_CORP, SignedIn, sign_in
from tests.console.test_security import _submit_claim, csrf_free_task_id


def _token(console_url: str, key: str, secret: str) -> httpx.Response:
    return httpx.post(f"{console_url}/v1.0/oauth2/accessToken", json={"appKey": key, "appSecret": secret}, timeout=30)


def _sign_in_works(console_url: str, username: str, password: str) -> bool:
    with httpx.Client(base_url=console_url) as client:
        page = client.get("/console/signin?corp=corpConsole").text
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
        assert csrf
        answer = client.post(
            "/console/signin",
            data={"csrf": csrf.group(1), "corp": "corpConsole", "username": username, "password": password},
        )
        return answer.status_code == 303


def test_people_create_edit_deactivate_reactivate(console_url: str) -> None:
    adm = sign_in(console_url, "adm")
    listing = adm.get("/console/admin/people").text
    assert "王经理" in listing and "局外人" in listing
    assert (
        "李员工" in adm.get("/console/admin/people?q=李").text
        and "王经理" not in adm.get("/console/admin/people?q=李").text
    )
    assert adm.get("/console/admin/people/new").status_code == 200
    bad = adm.post("/console/admin/people", {"user_id": "zhao", "name": "", "departments": "2"})
    assert bad.status_code == 400 and 'value="zhao"' in bad.text  # kept as entered, the core's message shown
    taken = adm.post("/console/admin/people", {"user_id": "wang", "name": "另一个王"})
    assert taken.status_code == 409
    created = adm.post(
        "/console/admin/people",
        {"user_id": "zhao", "name": "赵出纳 <b>", "name_en": "Zhao", "departments": "2", "manager": "wang",
         "username": "zhao", "password": "zhao-pass-0001"},
    )  # fmt: skip
    assert created.status_code == 303 and created.headers["location"] == "/console/admin/people/zhao?saved=1"
    page = adm.get("/console/admin/people/zhao").text
    assert 'value="赵出纳 &lt;b&gt;"' in page and "zhao-pass-0001" not in page
    assert _sign_in_works(console_url, "zhao", "zhao-pass-0001")
    edited = adm.post("/console/admin/people/zhao", {"name": "赵出纳", "departments": ["1", "2"], "title": "出纳"})
    assert edited.status_code == 303
    page = adm.get("/console/admin/people/zhao").text
    assert 'value="出纳"' in page and 'value="1" selected' in page and 'value="2" selected' in page
    assert adm.post("/console/admin/people/zhao", {"name": "赵", "departments": "999"}).status_code == 400
    assert adm.post("/console/admin/people/nobody", {"name": "x"}).status_code == 404
    # zhou holds a task: deactivating him needs a successor, who then holds it.
    li = sign_in(console_url, "li")
    claim = _submit_claim(li, "停用测试报销")
    wang = sign_in(console_url, "wang")
    task = csrf_free_task_id(console_url, claim)
    assert wang.post(f"/console/approvals/{claim}", {"action": "agree", "task": task}).status_code == 303
    refused = adm.post("/console/admin/people/zhou/active", {"action": "deactivate"})
    assert refused.status_code == 409 and "zhou" in refused.text
    done = adm.post("/console/admin/people/zhou/active", {"action": "deactivate", "hand_over_to": "zhao"})
    assert done.status_code == 303
    assert "已停用" in adm.get("/console/admin/people/zhou").text
    assert not _sign_in_works(console_url, "zhou", "console-zhou-pass")
    zhao = sign_in(console_url, "zhao", password="zhao-pass-0001")
    assert claim in zhao.get("/console/inbox?tab=todo").text
    assert adm.post("/console/admin/people/zhou/active", {"action": "reactivate"}).status_code == 303
    assert _sign_in_works(console_url, "zhou", "console-zhou-pass")


def test_departments_and_roles(console_url: str) -> None:
    adm = sign_in(console_url, "adm")
    created = adm.post("/console/admin/departments", {"name": "法务部", "parent": "1", "managers": "wang"})
    assert created.status_code == 303
    page = adm.get("/console/admin/departments").text
    dept_id = re.search(r"<tr><td>(\d+)</td><td>法务部", page)
    assert dept_id
    dept = dept_id.group(1)
    cycle = adm.post("/console/admin/departments/1", {"name": "控制台公司", "parent": dept})
    assert cycle.status_code == 400
    renamed = adm.post(f"/console/admin/departments/{dept}", {"name": "法务与合规 <i>", "parent": "1", "order": "3"})
    assert renamed.status_code == 303
    assert "法务与合规 &lt;i&gt;" in adm.get("/console/admin/departments").text
    busy = adm.post("/console/admin/departments/2/delete")  # 财务部 has members
    assert busy.status_code == 409 and "财务部" in busy.text
    assert adm.post(f"/console/admin/departments/{dept}/delete").status_code == 303
    assert "法务与合规" not in adm.get("/console/admin/departments").text
    assert adm.post("/console/admin/departments", {"name": "", "parent": ""}).status_code == 400
    assert adm.post("/console/admin/departments/abc", {"name": "x"}).status_code == 400
    # Roles.
    assert adm.post("/console/admin/roles", {"name": "审计", "group": "财务", "members": "zhou, li"}).status_code == 303
    page = adm.get("/console/admin/roles").text
    role_id = re.search(r"<tr><td>(\d+)</td><td>审计</td><td>财务</td><td>([^<]*)</td>", page)
    assert role_id and set(role_id.group(2).split(", ")) == {"zhou", "li"}
    role = role_id.group(1)
    assert adm.post(f"/console/admin/roles/{role}", {"name": "审计", "members": "nobody"}).status_code == 400
    assert adm.post(f"/console/admin/roles/{role}", {"name": "内审", "members": "zhou"}).status_code == 303
    assert "<td>内审</td><td></td><td>zhou</td>" in adm.get("/console/admin/roles").text
    assert adm.post(f"/console/admin/roles/{role}/delete").status_code == 303
    assert "内审" not in adm.get("/console/admin/roles").text
    assert adm.post("/console/admin/roles/424242/delete").status_code == 404


def test_rotating_a_credential(console_url: str) -> None:
    adm = sign_in(console_url, "adm")
    created = adm.post("/console/admin/credentials", {"client_id": "console-rotate", "scopes": "*"})
    old = re.search(r'id="issued-secret">([^<]+)<', created.text)
    assert old and _token(console_url, "console-rotate", old.group(1)).status_code == 200
    rotated = adm.post("/console/admin/credentials/console-rotate/rotate")
    assert rotated.status_code == 200 and "旧密钥已失效" in rotated.text
    new = re.search(r'id="rotated-secret">([^<]+)<', rotated.text)
    assert new and new.group(1) != old.group(1)
    assert _token(console_url, "console-rotate", old.group(1)).status_code != 200
    assert _token(console_url, "console-rotate", new.group(1)).status_code == 200
    assert new.group(1) not in adm.get("/console/admin/credentials").text  # shown once
    assert adm.post("/console/admin/credentials/no-such-key/rotate").status_code == 404
    boss = sign_in(console_url, "boss", OTHER_CORP)
    assert boss.post("/console/admin/credentials/console-rotate/rotate").status_code == 404
    assert _token(console_url, "console-rotate", new.group(1)).status_code == 200


def _subscription_row(adm: SignedIn) -> str:
    page = adm.get("/console/admin/subscriptions").text
    return page[page.index("<tbody>") : page.index("</tbody>")] if "<tbody>" in page else ""


def test_event_subscriptions_show_their_delivery_state(console_url: str) -> None:
    adm = sign_in(console_url, "adm")
    assert "暂无" in adm.get("/console/admin/subscriptions").text
    token = _token(console_url, "console-all", "console-secret-all-01").json()["accessToken"]
    receiver = Receiver("console-all")
    try:
        made = httpx.post(
            f"{console_url}/admin/v1/event-subscriptions",
            json={"appKey": "console-all", "kind": "http", "tags": ["*"], "url": receiver.url + "?a=<x>",
                  "token": TOKEN, "aesKey": AES_KEY},
            headers={"authorization": f"Bearer {token}"},
            timeout=30,
        )  # fmt: skip
        assert made.status_code == 201, made.text
        _submit_claim(sign_in(console_url, "li"), "事件测试报销")  # approval events: bpms_instance/task_change
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            row = _subscription_row(adm)
            delivered, _pending, failed = (int(c) for c in re.findall(r"<td>(\d+)</td>", row))
            if delivered >= 1:
                break
            time.sleep(0.5)
        assert delivered >= 1 and failed == 0, row
        assert "console-all" in row and "?a=&lt;x&gt;" in row and "<x>" not in row and ">OK<" in row
    finally:
        receiver.close()
    other = sign_in(console_url, "boss", OTHER_CORP).get("/console/admin/subscriptions").text
    assert "console-all" not in other
    assert sign_in(console_url, "li").get("/console/admin/subscriptions").status_code == 403


def test_apps_forms_fields_and_process_drawings(console_url: str) -> None:
    adm = sign_in(console_url, "adm")
    page = adm.get("/console/admin/apps").text
    assert "报销应用" in page and "FORM-CONSOLE-CLAIM" in page and "tableField_items" in page
    assert "项目" in page and "TableField" in page  # a sub-table's columns
    trip = page[page.index("FORM-CONSOLE-TRIP") :]
    svg = trip[trip.index("<svg") : trip.index("</svg>")]
    assert 'aria-label="流程 出差申请"' in svg
    for text in ("发起", "审批人 · 主管审批", "超过三天 &lt;script&gt;", "其他情况", "并行分支 1", "并行分支 2",
                 "审批人 · 财务审批", "抄送 · 抄送管理员", "抄送 · 抄送周会计", "结束"):  # fmt: skip
        assert text in svg, text
    assert "<script>" not in svg
    assert svg.count("<rect") == 2 + 5  # start, end and five nodes
    # The nodes come top to bottom: the manager, the route's branches, the CC after it.
    y = {
        name: float(re.search(rf'y="([\d.]+)"[^>]*>[^<]*{name}', svg).group(1))
        for name in ("主管审批", "财务审批", "抄送周会计")
    }  # type: ignore[union-attr]
    assert y["主管审批"] < y["财务审批"] < y["抄送周会计"]
    english = adm.get("/console/admin/apps?lang=en").text
    assert "Approver · Manager" in english and "Otherwise" in english
    adm.get("/console/admin/apps?lang=zh")


def test_failed_deliveries_are_redelivered_by_an_admin(console_url: str) -> None:
    """A receiver that was down gets the failed pushes again once an admin asks from the subscriptions page."""
    token = _token(console_url, "console-events", "console-secret-events-01").json()["accessToken"]
    api = {"authorization": f"Bearer {token}"}
    receiver = Receiver("console-events")
    made = httpx.post(
        f"{console_url}/admin/v1/event-subscriptions",
        json={"appKey": "console-events", "kind": "http", "tags": ["bpms_instance_change"], "url": receiver.url,
              "token": TOKEN, "aesKey": AES_KEY, "schedule": "dingtalk"},
        headers=api,
        timeout=30,
    )  # fmt: skip
    assert made.status_code == 201, made.text
    subscription = made.json()["id"]
    adm = sign_in(console_url, "adm")
    try:
        receiver.mode = "down"  # 503: tried at once, then twice more 0.2 s apart (the test server's schedule), failed
        li = sign_in(console_url, "li")
        _submit_claim(li, "重推测试报销")
        _submit_claim(li, "重推测试报销二")
        row = ""
        deadline = time.monotonic() + 30
        failed = 0
        while time.monotonic() < deadline:
            page = adm.get("/console/admin/subscriptions").text
            row = next((r for r in page.split("<tr>") if "console-events" in r), "")
            found = re.search(rf'/console/admin/subscriptions/{subscription}/failed"[^>]*>(\d+)</a>', row)
            failed = int(found.group(1)) if found else 0
            if failed >= 2 and f"/console/admin/subscriptions/{subscription}/redeliver" in row:
                break
            time.sleep(0.3)
        assert failed >= 2 and f"/console/admin/subscriptions/{subscription}/redeliver" in row, row
        assert not receiver.events()
        # One failed delivery sent again from the subscription's failed list.
        listing = adm.get(f"/console/admin/subscriptions/{subscription}/failed").text
        ids = re.findall(rf"/console/admin/subscriptions/{subscription}/deliveries/(\d+)/redeliver", listing)
        assert len(ids) == failed and "bpms_instance_change" in listing and "503" in listing, listing
        one = f"/console/admin/subscriptions/{subscription}/deliveries/{ids[0]}/redeliver"
        assert sign_in(console_url, "li").post(one).status_code == 403
        assert sign_in(console_url, "boss", OTHER_CORP).post(one).status_code == 404
        assert adm.post(one, {"one": "1"}, csrf="").status_code == 403
        receiver.mode = "ok"
        answer = adm.post(one)
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == f"/console/admin/subscriptions/{subscription}/failed?redelivered=1"
        assert len(receiver.wait_for(1, timeout=30)) == 1
        assert adm.post(one).status_code == 404  # no longer a failed delivery
        assert adm.post(f"/console/admin/subscriptions/{subscription}/deliveries/x/redeliver").status_code == 404
        listing = adm.get(answer.headers["location"]).text
        assert "已重新推送 1 条" in listing and f"/deliveries/{ids[0]}/redeliver" not in listing
        receiver.mode = "down"
        failed -= 1
        path = f"/console/admin/subscriptions/{subscription}/redeliver"
        # Not for a non-admin, nor another corp's admin, nor without the CSRF token: nothing is sent again.
        assert sign_in(console_url, "li").post(path).status_code == 403
        assert sign_in(console_url, "boss", OTHER_CORP).post(path).status_code == 404
        assert adm.post(path, {"all": "1"}, csrf="").status_code == 403
        assert adm.post("/console/admin/subscriptions/999999/redeliver").status_code == 404
        assert adm.post("/console/admin/subscriptions/x/redeliver").status_code == 404
        receiver.mode = "ok"
        answer = adm.post(path)
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/console/admin/subscriptions?redelivered={failed}"
        assert f"已重新推送 {failed} 条" in adm.get(answer.headers["location"]).text
        pushed = receiver.wait_for(failed + 1, timeout=30)
        assert len(pushed) == failed + 1 and {m.get("EventType") for m in pushed} == {"bpms_instance_change"}, pushed
    finally:
        httpx.delete(f"{console_url}/admin/v1/event-subscriptions/{subscription}", headers=api, timeout=30)
        receiver.close()


def test_a_password_set_by_an_admin_ends_the_users_sessions(console_url: str) -> None:
    """Someone who signed in with a leaked password keeps the console (and renews it with the refresh token) after an
    admin sets a new password: every session the old password opened must end."""
    adm = sign_in(console_url, "adm")
    made = adm.post(
        "/console/admin/people",
        {"user_id": "qian", "name": "钱", "departments": "2", "username": "qian", "password": "qian-pass-0001"},
    )
    assert made.status_code == 303, made.text
    intruder = sign_in(console_url, "qian", password="qian-pass-0001")
    assert intruder.get("/console/inbox").status_code == 200
    reset = adm.post("/console/admin/people/qian", {"name": "钱", "departments": "2", "password": "qian-pass-0002"})
    assert reset.status_code == 303, reset.text
    assert intruder.get("/console/inbox").status_code == 303  # to the sign-in page
    assert not _sign_in_works(console_url, "qian", "qian-pass-0001")
