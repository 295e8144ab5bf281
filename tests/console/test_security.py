"""The console's security over plain HTTP: an auth matrix over its routes (no session, another corp's user, someone
who takes no part, a non-admin on admin pages, CSRF missing or wrong), escaping, lockout, cookies and headers, and
the API paths it must leave to the dialects."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from starlette.routing import Route

from tests.console.conftest import CORP, OTHER_CORP, PASSWORDS, SignedIn, csrf_of, sign_in
from zida.console.routes import routes

CLAIM = "FORM-CONSOLE-CLAIM"
NOTE = "FORM-CONSOLE-NOTE"
PLACES = "FORM-CONSOLE-PLACES"


def _submit_claim(li: SignedIn, title: str) -> str:
    answer = li.post(
        f"/console/forms/{CLAIM}/new",
        {
            "f.textField_title": title,
            "f.numberField_amount": "12.5",
            "t.tableField_items.0.textField_item": "出租车",
            "t.tableField_items.0.numberField_cost": "12.5",
        },
    )
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith("/console/approvals/")
    return location.rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def claim(console_url: str) -> str:
    """A running approval li submitted (wang decides next)."""
    return _submit_claim(sign_in(console_url, "li"), "安全测试报销")


@pytest.fixture(scope="module")
def note(console_url: str) -> str:
    """A plain record li saved, its title a script tag."""
    li = sign_in(console_url, "li")
    answer = li.post(f"/console/forms/{NOTE}/new", {"f.textField_title": "<script>alert(1)</script>"})
    assert answer.status_code == 303, answer.text
    return answer.headers["location"].split("?")[0].rsplit("/", 1)[1]


def _pages(claim: str, note: str) -> list[str]:
    return [
        "/console/inbox",
        "/console/apps",
        f"/console/approvals/{claim}",
        f"/console/forms/{CLAIM}/new",
        f"/console/forms/{CLAIM}/records",
        f"/console/records/{note}",
        f"/console/records/{note}/edit",
        f"/console/records/{note}/files/zf-none",
        f"/console/forms/{PLACES}/associations/associationFormField_ledger?q=站",
        "/console/people?q=王",
        "/console/departments?q=财务",
        f"/console/forms/{CLAIM}/export?format=csv",
        f"/console/forms/{CLAIM}/export?format=xlsx",
        "/console/inbox?tab=notifications",
        *ADMIN_PAGES,
    ]


ADMIN_PAGES = [
    "/console/admin/credentials",
    "/console/admin/subscriptions",
    "/console/admin/subscriptions/1/failed",
    "/console/admin/apps",
    "/console/admin/people",
    "/console/admin/people/new",
    "/console/admin/people/wang",
    "/console/admin/departments",
    "/console/admin/roles",
]
ADMIN_ACTIONS = [
    "/console/admin/credentials",
    "/console/admin/credentials/console-all/revoke",
    "/console/admin/credentials/console-all/rotate",
    "/console/admin/subscriptions/1/redeliver",
    "/console/admin/subscriptions/1/deliveries/1/redeliver",
    "/console/admin/people",
    "/console/admin/people/wang",
    "/console/admin/people/wang/active",
    "/console/admin/departments",
    "/console/admin/departments/2",
    "/console/admin/departments/2/delete",
    "/console/admin/roles",
    "/console/admin/roles/1",
    "/console/admin/roles/1/delete",
]


def _actions(claim: str) -> list[str]:
    return [
        "/console/signout",
        f"/console/approvals/{claim}",
        f"/console/forms/{NOTE}/new",
        "/console/files",
        f"/console/records/{claim}/remarks",
        f"/console/records/{claim}/edit",
        "/console/inbox/read",
        *ADMIN_ACTIONS,
    ]


def test_no_session_gets_the_sign_in_page_or_401(console_url: str, claim: str, note: str) -> None:
    with httpx.Client(base_url=console_url) as anonymous:
        for path in _pages(claim, note):
            answer = anonymous.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/console/signin?next=%2Fconsole%2F"), path
        for path in _actions(claim):
            assert anonymous.post(path, data={"action": "agree"}).status_code == 401, path
        # A credential's access token is not a session, whatever cookie it travels in.
        token = anonymous.post(
            "/v1.0/oauth2/accessToken", json={"appKey": "console-all", "appSecret": "console-secret-all-01"}
        ).json()["accessToken"]
        anonymous.cookies.set("zida_session", token, path="/console")
        assert anonymous.get("/console/inbox").status_code == 303


def test_another_corps_user_finds_nothing(console_url: str, claim: str, note: str) -> None:
    other = sign_in(console_url, "li", OTHER_CORP)
    for path in (
        f"/console/approvals/{claim}",
        f"/console/forms/{CLAIM}/new",
        f"/console/forms/{CLAIM}/records",
        f"/console/records/{note}",
        f"/console/records/{claim}",
        f"/console/records/{claim}/edit",
        f"/console/forms/{PLACES}/associations/associationFormField_ledger?q=站",
    ):
        assert other.get(path).status_code == 404, path
    assert other.post(f"/console/records/{note}/edit", {"f.textField_title": "别家改的"}).status_code == 404
    acted = other.post(f"/console/approvals/{claim}", {"action": "agree", "task": "1"})
    assert acted.status_code == 404
    for action in ("urge", "terminate", "withdraw"):
        assert other.post(f"/console/approvals/{claim}", {"action": action}).status_code == 404
    assert other.post(f"/console/records/{note}/remarks", {"content": "别家评论"}).status_code == 404
    assert other.get(f"/console/forms/{CLAIM}/export?format=csv").status_code == 404
    inbox = other.get("/console/inbox?tab=todo").text
    assert claim not in inbox and "安全测试报销" not in inbox
    assert "王经理" not in other.get("/console/people?q=王").text
    assert other.get("/console/departments?q=财务").json() == []
    assert sign_in(console_url, "li").get("/console/departments?q=财务").json() == [{"id": 2, "name": "财务部"}]


def test_someone_outside_the_approval_may_not_see_or_act(console_url: str, claim: str, note: str) -> None:
    out = sign_in(console_url, "out")
    assert out.get(f"/console/approvals/{claim}").status_code == 403
    assert out.get(f"/console/records/{claim}").status_code == 403
    assert out.get(f"/console/records/{note}").status_code == 403
    assert out.get(f"/console/records/{note}/edit").status_code == 403
    assert out.post(f"/console/records/{note}/edit", {"f.textField_title": "局外人改的"}).status_code == 403
    assert out.post(f"/console/records/{note}/remarks", {"content": "局外人评论"}).status_code == 403
    assert out.post(f"/console/approvals/{claim}", {"action": "terminate"}).status_code == 403
    assert "局外人评论" not in sign_in(console_url, "li").get(f"/console/records/{note}").text
    task = csrf_free_task_id(console_url, claim)
    refused = out.post(f"/console/approvals/{claim}", {"action": "agree", "task": task})
    assert refused.status_code == 403
    # li (the originator) may see it, but the task is wang's: the engine refuses her agreeing for him.
    li = sign_in(console_url, "li")
    assert li.get(f"/console/approvals/{claim}").status_code == 200
    assert li.post(f"/console/approvals/{claim}", {"action": "agree", "task": task}).status_code in (403, 409)
    page = sign_in(console_url, "wang").get(f"/console/approvals/{claim}").text
    assert "同意" in page and "等待处理" in page  # still waiting for wang


def csrf_free_task_id(base_url: str, claim: str) -> str:
    """wang's running task on the claim, read from his approval page."""
    page = sign_in(base_url, "wang").get(f"/console/approvals/{claim}").text
    start = page.index('name="task" value="') + len('name="task" value="')
    return page[start : page.index('"', start)]


def test_admin_pages_are_for_admins_only(console_url: str) -> None:
    li = sign_in(console_url, "li")
    for path in ADMIN_PAGES:
        assert li.get(path).status_code == 403, path
    for path in ADMIN_ACTIONS:
        assert li.post(path, {"scopes": "*", "name": "li 改的", "action": "deactivate"}).status_code == 403, path
    assert "/console/admin" not in li.get("/console/inbox").text
    adm = sign_in(console_url, "adm")
    assert (
        "王经理" in adm.get("/console/admin/people/wang").text
        and "财务部" in adm.get("/console/admin/departments").text
    )
    # Another corp's admin finds none of this corp's people, departments or credentials.
    boss = sign_in(console_url, "boss", OTHER_CORP)
    assert "王经理" not in boss.get("/console/admin/people").text
    assert boss.get("/console/admin/people/wang").status_code == 404
    assert boss.post("/console/admin/people/wang", {"name": "别家改的"}).status_code == 404
    assert boss.post("/console/admin/people/wang/active", {"action": "deactivate"}).status_code == 404
    assert "财务部" not in boss.get("/console/admin/departments").text
    assert boss.post("/console/admin/departments/2", {"name": "别家改的"}).status_code == 404
    assert boss.post("/console/admin/credentials/console-all/rotate").status_code == 404
    assert (
        "王经理" in adm.get("/console/admin/people/wang").text
        and "财务部" in adm.get("/console/admin/departments").text
    )
    # Another corp's admin does not see this corp's credentials, nor revoke them.
    boss = sign_in(console_url, "boss", OTHER_CORP)
    assert "console-all" not in boss.get("/console/admin/credentials").text
    assert boss.post("/console/admin/credentials/console-all/revoke").status_code == 404
    adm = sign_in(console_url, "adm")
    assert "console-all" in adm.get("/console/admin/credentials").text


def test_posts_without_the_right_csrf_token_change_nothing(console_url: str, claim: str) -> None:
    adm = sign_in(console_url, "adm")
    li = sign_in(console_url, "li")
    for token in ("", "0" * 64, li.csrf):  # missing, wrong, another user's
        created = adm.post("/console/admin/credentials", {"client_id": "csrf-made", "scopes": "*"}, csrf=token)
        assert created.status_code == 403, token
        assert "表单已过期" in created.text
        assert adm.post(f"/console/forms/{NOTE}/new", {"f.textField_title": "csrf"}, csrf=token).status_code == 403
        upload = adm.client.post("/console/files", files={"file": ("a.txt", b"hello")}, headers={"x-csrf-token": token})
        assert upload.status_code == 403
    assert "csrf-made" not in adm.get("/console/admin/credentials").text
    for token in ("", "0" * 64, li.csrf):
        for path in ADMIN_ACTIONS:
            answer = adm.post(path, {"name": "csrf 改的", "action": "deactivate", "scopes": "*"}, csrf=token)
            assert answer.status_code == 403, path
        assert adm.post(f"/console/records/{claim}/remarks", {"content": "csrf 评论"}, csrf=token).status_code == 403
        edit = adm.post(f"/console/records/{claim}/edit", {"f.textField_title": "csrf 改的"}, csrf=token)
        assert edit.status_code == 403
        assert adm.post("/console/inbox/read", {"id": "1"}, csrf=token).status_code == 403
    assert "已停用" not in adm.get("/console/admin/people/wang").text
    assert "csrf 改的" not in adm.get("/console/admin/departments").text
    assert "console-all" in adm.get("/console/admin/credentials").text
    wang = sign_in(console_url, "wang")
    task = csrf_free_task_id(console_url, claim)
    assert wang.post(f"/console/approvals/{claim}", {"action": "agree", "task": task}, csrf="").status_code == 403
    assert "等待处理" in wang.get(f"/console/approvals/{claim}").text
    assert "csrf 改的" not in wang.get(f"/console/records/{claim}").text
    # Signing in, too, needs the token (no login CSRF).
    with httpx.Client(base_url=console_url) as fresh:
        fresh.get("/console/signin")
        answer = fresh.post(
            "/console/signin", data={"corp": CORP, "username": "li", "password": PASSWORDS[(CORP, "li")]}
        )
        assert answer.status_code == 403


def test_values_are_escaped(console_url: str, note: str) -> None:
    li = sign_in(console_url, "li")
    page = li.get(f"/console/records/{note}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert" not in page
    listing = li.get(f"/console/forms/{NOTE}/records").text
    assert "&lt;script&gt;" in listing and "<script>alert" not in listing


def test_a_stored_link_of_another_scheme_is_no_link(console_url: str) -> None:
    """An attachment item naming no Zida file is kept as the API client sent it: only http(s) becomes a link."""
    token = httpx.post(
        f"{console_url}/v1.0/oauth2/accessToken", json={"appKey": "console-all", "appSecret": "console-secret-all-01"}
    ).json()["accessToken"]
    invoices = [
        {"name": "evil.pdf", "downloadUrl": "javascript:alert(1)"},
        {"name": "ok.pdf", "downloadUrl": "https://files.example/ok.pdf"},
    ]
    started = httpx.post(
        f"{console_url}/v1.0/yida/processes/instances/start",
        headers={"x-acs-dingtalk-access-token": token},
        json={
            "appType": "APP_CONSOLE",
            "systemToken": "ST-CONSOLE-SECRET",
            "userId": "li",
            "formUuid": CLAIM,
            "formDataJson": json.dumps(
                {"textField_title": "links", "numberField_amount": 1, "attachmentField_invoice": invoices}
            ),
        },
    )
    assert started.status_code == 200, started.text
    page = sign_in(console_url, "li").get(f"/console/approvals/{started.json()['result']}").text
    assert "evil.pdf" in page and "javascript:" not in page
    assert 'href="https://files.example/ok.pdf"' in page


def test_sign_in_failures_lock_the_name(console_url: str) -> None:
    with httpx.Client(base_url=console_url) as client:
        token = csrf_of(client.get("/console/signin").text)
        form = {"csrf": token, "corp": CORP, "username": "locked"}
        for _ in range(10):
            wrong = client.post("/console/signin", data={**form, "password": "not-the-password"})
            assert wrong.status_code == 401
            assert "用户名或密码错误" in wrong.text
        right = client.post("/console/signin", data={**form, "password": "console-locked-pass"})
        assert right.status_code == 429
        assert "登录失败次数过多" in right.text
        assert "zida_session" not in client.cookies


def test_cookies_and_headers(console_url: str) -> None:
    with httpx.Client(base_url=console_url) as client:
        page = client.get("/console/signin")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["cache-control"] == "no-store"
        answer = client.post(
            "/console/signin",
            data={"csrf": csrf_of(page.text), "corp": CORP, "username": "li", "password": PASSWORDS[(CORP, "li")]},
        )
        cookies = [v for k, v in answer.headers.multi_items() if k == "set-cookie"]
        session = next(c for c in cookies if c.startswith("zida_session="))
        assert "HttpOnly" in session and "SameSite=lax" in session and "Path=/console" in session
        assert "Secure" not in session  # plain HTTP here; Secure over HTTPS (ZIDA_PUBLIC_URL https://…)
        client.post("/console/signout", data={"csrf": csrf_of(client.get("/console/inbox").text)})
        assert client.get("/console/inbox").status_code == 303  # the session is over on the server too
        ended = client.cookies.get("zida_session")
        assert not ended


def test_signing_out_with_an_expired_access_token_ends_the_renewed_session_and_sends_no_token(console_url: str) -> None:
    # Idle past the access token's life, the user signs out: the request renews the session first (the refresh
    # cookie), and the sign-out must end that renewed session, not look for the expired token, nor hand the new
    # tokens out in its answer.
    li = sign_in(console_url, "li")
    refresh = li.client.cookies.get("zida_refresh")
    with httpx.Client(base_url=console_url, follow_redirects=False) as idle:
        idle.cookies.set("zida_session", "expired-token", path="/console")
        idle.cookies.set("zida_refresh", refresh, path="/console")
        idle.cookies.set("zida_csrf", li.client.cookies.get("zida_csrf"), path="/console")
        answer = idle.post("/console/signout", data={"csrf": li.csrf})
        assert answer.status_code == 303, answer.text
        set_cookies = [v for k, v in answer.headers.multi_items() if k == "set-cookie"]
        session_cookies = [c for c in set_cookies if c.startswith(("zida_session=", "zida_refresh="))]
        tokens = [c.split(";")[0].split("=", 1)[1] for c in session_cookies]
        assert tokens and all(t in ("", '""') for t in tokens), set_cookies  # only deletions
        idle.cookies.set("zida_refresh", refresh, path="/console")
        assert idle.get("/console/inbox").status_code == 303  # the refresh token is spent, the session over


def test_a_live_session_skips_the_sign_in_page_and_a_spent_refresh_token_clears_no_cookie(console_url: str) -> None:
    li = sign_in(console_url, "li")
    answer = li.client.get("/console/signin", params={"next": "/console/records"})
    assert (answer.status_code, answer.headers["location"]) == (303, "/console/records")
    assert li.client.get("/console/signin", params={"next": "https://evil.example/"}).headers["location"] == (
        "/console/inbox"
    )
    # An ended access token and a refresh token already spent (as when another tab of the browser renewed the
    # session a moment before): to the sign-in page, without deleting the cookies that other answer set.
    with httpx.Client(base_url=console_url, follow_redirects=False) as stale:
        stale.cookies.set("zida_session", "ended-token", path="/console")
        stale.cookies.set("zida_refresh", "1:spent-refresh-token", path="/console")
        answer = stale.get("/console/inbox")
        assert answer.status_code == 303 and answer.headers["location"].startswith("/console/signin?next=")
        assert not [v for k, v in answer.headers.multi_items() if k == "set-cookie" and "zida_session" in v]


def test_api_paths_stay_the_dialects(console_url: str) -> None:
    with httpx.Client(base_url=console_url) as client:
        assert client.get("/").headers["location"] == "/console/"
        assert client.get("/gettoken").headers["content-type"].startswith("application/json")
        unknown = client.get("/no-such-path")
        assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("application/json")
        assert client.get("/consolex").headers["content-type"].startswith("application/json")
        assert "text/html" in client.get("/console/no-such-page").headers["content-type"]
        assert client.get("/healthz").status_code == 200
        paths = client.get("/openapi.json").json()["paths"]
        assert not [p for p in paths if p.startswith("/console") or p == "/"]
        assert client.get("/console/static/console.js").status_code == 200


def test_english(console_url: str) -> None:
    with httpx.Client(base_url=console_url) as client:
        page = client.get("/console/signin?lang=en").text
        assert ">Username<" in page and ">Password<" in page and ">Sign in<" in page
        assert ">Username<" in client.get("/console/signin").text  # remembered in a cookie
    with httpx.Client(base_url=console_url, headers={"accept-language": "en-US,en;q=0.9"}) as client:
        assert ">Sign in<" in client.get("/console/signin").text
    with httpx.Client(base_url=console_url) as client:
        page = client.get("/console/signin").text
        assert ">用户名<" in page and ">密码<" in page and ">登录<" in page


def test_the_console_can_be_switched_off() -> None:
    from zida.server import create_app
    from zida.settings import Settings

    def served(settings: Settings) -> list[str]:
        router = create_app(settings).router
        return [m.name for m in router.mounts if m.serves("/console/inbox") or m.serves("/")]  # type: ignore[attr-defined]

    assert served(Settings(console_enabled=True)) == ["console"]
    assert served(Settings(console_enabled=False)) == []


def test_the_matrix_covers_every_console_route() -> None:
    """Every page and action of ``zida.console.routes`` is in the matrix above (the sign-in page, the root redirects
    and the static files are open to everyone by design)."""
    open_to_all = {"/", "/console", "/console/", "/console/signin"}
    asked = {("GET", p.split("?")[0]) for p in _pages("FINST-X", "FINST-Y")}
    asked |= {("POST", p) for p in _actions("FINST-X")}
    missing = []
    for route in routes():
        if not isinstance(route, Route) or route.path in open_to_all:
            continue
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", route.path) + "$")
        for method in sorted((route.methods or set()) - {"HEAD"}):
            if not any(m == method and pattern.match(path) for m, path in asked):
                missing.append(f"{method} {route.path}")
    assert missing == []


def _claim_with_file(user: SignedIn, title: str, file_id: str) -> httpx.Response:
    return user.post(
        f"/console/forms/{CLAIM}/new",
        {"f.textField_title": title, "f.numberField_amount": "3", "t.tableField_items.0.textField_item": "纸",
         "f.attachmentField_invoice": file_id},
    )  # fmt: skip


def test_a_file_of_a_record_one_may_not_read_cannot_be_attached_to_ones_own(console_url: str) -> None:
    """A file id of someone else's record (from a link, a log, a guess) put in one's own form would attach the file
    to one's record and make it one's own to download: refused, its name not shown, nothing saved."""
    li = sign_in(console_url, "li")
    uploaded = li.client.post(
        "/console/files",
        files={"file": ("payslip-li.txt", b"li's salary: 12345\n", "text/plain")},
        headers={"x-csrf-token": li.csrf},
    )
    assert uploaded.status_code == 201, uploaded.text
    file_id = uploaded.json()["fileId"]
    mine = _claim_with_file(li, "li 的工资单", file_id)
    assert mine.status_code == 303, mine.text  # her own upload: attached
    li_claim = mine.headers["location"].rsplit("/", 1)[1]
    assert li.get(f"/console/records/{li_claim}/files/{file_id}").content == b"li's salary: 12345\n"

    out = sign_in(console_url, "out")
    assert out.get(f"/console/records/{li_claim}/files/{file_id}").status_code == 403
    before = out.get("/console/inbox?tab=submitted").text
    stolen = _claim_with_file(out, "偷看工资单", file_id)
    assert stolen.status_code == 400, stolen.headers.get("location")
    assert file_id in stolen.text and "payslip-li.txt" not in stolen.text
    assert out.get("/console/inbox?tab=submitted").text.count("偷看工资单") == before.count("偷看工资单") == 0
    # Nor through a file id that is no file at all.
    assert _claim_with_file(out, "偷看工资单", "FILE-NOSUCHFILE").status_code == 400
