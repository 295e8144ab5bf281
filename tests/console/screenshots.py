"""Regenerate the console's screenshots in docs/console/ (``python -m tests.console.screenshots``).

A fresh SQLite database with the console tests' organisation, a live server, a few approvals made through the
console, then Debian's headless Chromium photographs the main pages (desktop, and the inbox on a phone). Chinese
text needs a CJK font on the machine (Debian: ``apt-get install fonts-wqy-microhei``).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.conformance.events.receiver import AES_KEY, TOKEN, Receiver
from tests.conftest import ServerProcess, fresh_database, load_fixture_bundle
from tests.console.conftest import CHROMIUM, CORP, PASSWORDS, sign_in

OUT = Path(__file__).resolve().parents[2] / "docs" / "console"


def _claim(base_url: str, title: str, amount: str, items: list[tuple[str, str]]) -> str:
    li = sign_in(base_url, "li")
    data: dict[str, object] = {
        "f.textField_title": title,
        "f.numberField_amount": amount,
        "f.dateField_day": "2024-05-06",
        "f.selectField_kind": "travel",
        "f.radioField_pay": "银行卡",
        "f.employeeField_agent": "wang",
        "f.textareaField_note": "行程见附件",
    }
    for i, (item, cost) in enumerate(items):
        data[f"t.tableField_items.{i}.textField_item"] = item
        data[f"t.tableField_items.{i}.numberField_cost"] = cost
    answer = li.post("/console/forms/FORM-CONSOLE-CLAIM/new", data)
    assert answer.status_code == 303, answer.text
    return str(answer.headers["location"]).rsplit("/", 1)[1]


def _agree(base_url: str, username: str, instance_id: str, remark: str) -> None:
    user = sign_in(base_url, username)
    page = user.get(f"/console/approvals/{instance_id}").text
    start = page.index('name="task" value="') + len('name="task" value="')
    task = page[start : page.index('"', start)]
    answer = user.post(f"/console/approvals/{instance_id}", {"action": "agree", "task": task, "remark": remark})
    assert answer.status_code == 303, answer.text


def main() -> int:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, fresh_database(Path(tmp)) as url:
        load_fixture_bundle(url, "corp_console.yaml")
        files = Path(tmp) / "files"
        files.mkdir()
        server = ServerProcess(url, ZIDA_FILES_URL=f"file://{files}")
        base = f"http://{server.endpoint}"
        receiver: Receiver | None = None
        try:
            first = _claim(base, "北京出差报销", "1500", [("机票", "1200"), ("酒店", "300")])
            _agree(base, "wang", first, "同意，注意保留票据")
            _claim(base, "客户招待", "480", [("晚餐", "480")])
            _claim(base, "上海培训", "2600", [("课程费", "2000"), ("高铁", "600")])
            li = sign_in(base, "li")
            li.post(f"/console/records/{first}/remarks", {"content": "发票原件已交财务"})
            receiver = Receiver("console-all")
            token = httpx.post(
                f"{base}/v1.0/oauth2/accessToken",
                json={"appKey": "console-all", "appSecret": "console-secret-all-01"},
                timeout=30,
            ).json()["accessToken"]
            httpx.post(
                f"{base}/admin/v1/event-subscriptions",
                json={"appKey": "console-all", "kind": "http", "tags": ["*"], "url": receiver.url, "token": TOKEN,
                      "aesKey": AES_KEY},
                headers={"authorization": f"Bearer {token}"},
                timeout=30,
            ).raise_for_status()  # fmt: skip
            _claim(base, "杭州客户拜访", "900", [("高铁", "900")])  # events for the subscription
            time.sleep(2)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
                desktop = browser.new_context(viewport={"width": 1100, "height": 760}, locale="zh-CN")
                page = desktop.new_page()
                page.goto(f"{base}/console/signin?corp={CORP}")
                page.screenshot(path=OUT / "signin.png")
                for who in ("wang", "li"):
                    page.goto(f"{base}/console/signin?corp={CORP}")
                    page.get_by_label("用户名").fill(who)
                    page.get_by_label("密码").fill(PASSWORDS[(CORP, who)])
                    page.get_by_role("button", name="登录").click()
                    page.wait_for_url("**/console/inbox")
                    if who == "wang":
                        page.screenshot(path=OUT / "inbox.png", full_page=True)
                        page.goto(f"{base}/console/inbox?tab=notifications")
                        page.screenshot(path=OUT / "notifications.png", full_page=True)
                        page.goto(f"{base}/console/inbox")
                        page.get_by_role("link", name="李员工发起的报销单").first.click()
                        page.screenshot(path=OUT / "approval.png", full_page=True)
                        page.get_by_role("button", name="退出").click()
                page.goto(f"{base}/console/forms/FORM-CONSOLE-CLAIM/new")
                page.screenshot(path=OUT / "fill.png", full_page=True)
                page.goto(f"{base}/console/forms/FORM-CONSOLE-CLAIM/records")
                page.screenshot(path=OUT / "records.png", full_page=True)
                page.goto(f"{base}/console/records/{first}")
                page.screenshot(path=OUT / "record.png", full_page=True)
                admin = browser.new_context(viewport={"width": 1100, "height": 760}, locale="en-US")
                page = admin.new_page()
                page.goto(f"{base}/console/signin?corp={CORP}")
                page.get_by_label("Username").fill("adm")
                page.get_by_label("Password").fill(PASSWORDS[(CORP, "adm")])
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url("**/console/inbox")
                page.goto(f"{base}/console/admin/credentials")
                page.get_by_label("AppKey").fill("dingconsoleexample")
                page.get_by_label("Every scope (*)").check()
                page.get_by_role("button", name="Create credential").click()
                page.screenshot(path=OUT / "admin-credentials.png", full_page=True)
                for name in ("people", "apps", "subscriptions"):
                    page.goto(f"{base}/console/admin/{name}")
                    if name == "apps":  # the trip's process: a route with parallel branches
                        page.locator("summary", has_text="FORM-CONSOLE-CLAIM").click()
                        page.locator("summary", has_text="FORM-CONSOLE-TRIP").click()
                    page.screenshot(path=OUT / f"admin-{name}.png", full_page=True)
                phone = browser.new_context(viewport={"width": 390, "height": 760}, is_mobile=True, locale="zh-CN")
                page = phone.new_page()
                page.goto(f"{base}/console/signin?corp={CORP}")
                page.get_by_label("用户名").fill("li")
                page.get_by_label("密码").fill(PASSWORDS[(CORP, "li")])
                page.get_by_role("button", name="登录").click()
                page.wait_for_url("**/console/inbox")
                page.goto(f"{base}/console/inbox?tab=submitted")
                page.screenshot(path=OUT / "inbox-phone.png")
                browser.close()
        finally:
            server.stop()
            if receiver is not None:
                receiver.close()
    for png in sorted(OUT.glob("*.png")):
        print(png.relative_to(OUT.parents[1]), png.stat().st_size, "bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
