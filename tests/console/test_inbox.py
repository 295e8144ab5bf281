"""The inbox's notifications tab and the approval actions beyond deciding — add a signer, urge, terminate — over
plain HTTP, with the engine's rules (who may) and the access policy (who may not)."""

from __future__ import annotations

import re

import httpx

from tests.console.conftest import OTHER_CORP, SignedIn, sign_in
from tests.console.test_security import _submit_claim, csrf_free_task_id


def _send(console_url: str, users: str, msg: dict[str, object]) -> None:
    """A work notification sent through the DingTalk dialect with the corp's credential."""
    token = httpx.post(
        f"{console_url}/v1.0/oauth2/accessToken",
        json={"appKey": "console-all", "appSecret": "console-secret-all-01"},
        timeout=30,
    ).json()["accessToken"]
    sent = httpx.post(
        f"{console_url}/topapi/message/corpconversation/asyncsend_v2",
        params={"access_token": token},
        json={"agent_id": 1, "userid_list": users, "msg": msg},
        timeout=30,
    )
    assert sent.json()["errcode"] == 0, sent.text


def _unread(user: SignedIn) -> int:
    page = user.get("/console/inbox?tab=notifications").text
    found = re.search(r'tab=notifications"[^>]*>通知 <span class="count">(\d+)</span>', page)
    assert found, page
    return int(found.group(1))


def test_notifications_tab_lists_marks_read_and_escapes(console_url: str) -> None:
    zhou = sign_in(console_url, "zhou")
    before = _unread(zhou)
    _send(console_url, "zhou", {"msgtype": "text", "text": {"content": "月底对账 <script>alert(1)</script>"}})
    _send(
        console_url,
        "zhou",
        {"msgtype": "link", "link": {"title": "危险链接", "text": "点我", "messageUrl": "javascript:alert(1)",
                                     "picUrl": "x"}},
    )  # fmt: skip
    _send(
        console_url,
        "zhou",
        {"msgtype": "oa", "oa": {"message_url": "https://example.com/doc?a=1&b=2", "head": {"text": "OA"},
                                 "body": {"title": "季度报表", "content": "请查收"}}},
    )  # fmt: skip
    assert _unread(zhou) == before + 3
    page = zhou.get("/console/inbox?tab=notifications").text
    assert "月底对账 &lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "javascript:" not in page  # a link that is not http(s) is shown as text only
    assert 'href="https://example.com/doc?a=1&amp;b=2"' in page and "季度报表" in page
    assert page.index("季度报表") < page.index("危险链接") < page.index("月底对账")  # newest first
    ids = re.findall(r'name="id" value="(\d+)"><button', page)
    assert len(ids) == before + 3
    # Someone else cannot mark zhou's notifications read; zhou can, one or the whole page.
    li = sign_in(console_url, "li")
    assert li.post("/console/inbox/read", {"id": ids[0]}).status_code == 303
    assert _unread(zhou) == before + 3
    assert zhou.post("/console/inbox/read", {"id": ids[0]}).status_code == 303
    assert _unread(zhou) == before + 2
    page = zhou.get("/console/inbox?tab=notifications").text
    assert "本页全部标为已读" in page
    everything = re.findall(r'<input type="hidden" name="id" value="(\d+)">', page)
    assert (
        zhou.client.post(
            "/console/inbox/read", data={"csrf": zhou.csrf, "id": list(dict.fromkeys(everything))}
        ).status_code
        == 303
    )
    assert _unread(zhou) == 0
    for bad in ({"id": "x"}, {}, {"id": "1" * 19}):
        assert zhou.post("/console/inbox/read", bad).status_code == 400
    assert zhou.get("/console/inbox?tab=notifications&before=abc").status_code == 400
    assert zhou.get("/console/inbox?tab=nope").status_code == 400
    assert zhou.post("/console/inbox/read", {"id": ids[1]}, csrf="").status_code == 403


def test_an_approval_notifies_its_next_approver_with_a_console_link(console_url: str) -> None:
    claim = _submit_claim(sign_in(console_url, "li"), "通知测试报销")
    page = sign_in(console_url, "wang").get("/console/inbox?tab=notifications").text
    assert f'href="/console/approvals/{claim}"' in page and "你有一条待审批：李员工发起的报销单" in page
    other = sign_in(console_url, "li", OTHER_CORP).get("/console/inbox?tab=notifications").text
    assert claim not in other


def test_add_a_signer_before_and_urge(console_url: str) -> None:
    li = sign_in(console_url, "li")
    claim = _submit_claim(li, "加签测试报销")
    wang = sign_in(console_url, "wang")
    task = csrf_free_task_id(console_url, claim)
    url = f"/console/approvals/{claim}"
    missing = wang.post(url, {"action": "add_signer", "task": task, "signers": " , "})
    assert missing.status_code == 400 and "请填写加签人" in missing.text
    unknown = wang.post(url, {"action": "add_signer", "task": task, "signers": "nobody"})
    assert unknown.status_code == 404
    added = wang.post(url, {"action": "add_signer", "task": task, "signers": "adm", "remark": "请管理员先看"})
    assert added.status_code == 303
    page = wang.get(url).text
    assert "加签" in page and "请管理员先看" in page
    adm = sign_in(console_url, "adm")
    assert claim in adm.get("/console/inbox?tab=todo").text  # the signer decides first
    # Urge: the originator (and app admins) may; the approver may not; the flow shows it.
    assert "催办" in li.get(url).text and ">催办<" not in wang.get(url).text.split('id="data-h"')[0]
    assert wang.post(url, {"action": "urge"}).status_code == 403
    assert li.post(url, {"action": "urge", "remark": "请尽快"}).status_code == 303
    assert "请尽快" in li.get(url).text
    out = sign_in(console_url, "out")
    assert out.post(url, {"action": "urge"}).status_code == 403


def test_terminate(console_url: str) -> None:
    li = sign_in(console_url, "li")
    claim = _submit_claim(li, "终止测试报销")
    url = f"/console/approvals/{claim}"
    wang = sign_in(console_url, "wang")
    assert 'value="terminate"' not in wang.get(url).text
    assert wang.post(url, {"action": "terminate"}).status_code == 403
    assert "审批中" in li.get(url).text and 'value="terminate"' in li.get(url).text
    assert li.post(url, {"action": "terminate"}, csrf="").status_code == 403
    assert li.post(url, {"action": "terminate", "remark": "不报了"}).status_code == 303
    page = li.get(url).text
    assert "已终止" in page and "不报了" in page and 'value="terminate"' not in page
    assert li.post(url, {"action": "terminate"}).status_code in (400, 409)  # nothing left to end
    assert claim not in wang.get("/console/inbox?tab=todo").text
    assert li.post(url, {"action": "explode"}).status_code == 400
