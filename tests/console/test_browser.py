"""The console in a real browser (Debian's headless Chromium through Playwright): li signs in and files an expense
claim with a sub-table and an attachment, wang and zhou approve it from their inboxes, li finds the record and
downloads the invoice, and an admin issues a credential that then gets a token through the DingTalk dialect."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.console.conftest import CORP, PASSWORDS

INVOICE = b"%PDF-1.4\n% a tiny invoice\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (no cookies), phone-sized when a test asks for it."""
    ctx = browser.new_context(viewport={"width": 1100, "height": 900}, locale="zh-CN")
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


def sign_in(page: Any, base_url: str, username: str, *, english: bool = False) -> None:
    """Sign in through the sign-in page, by its labels."""
    page.goto(f"{base_url}/console/signin?corp={CORP}" + ("&lang=en" if english else ""))
    page.get_by_label("Username" if english else "用户名").fill(username)
    page.get_by_label("Password" if english else "密码").fill(PASSWORDS[(CORP, username)])
    page.get_by_role("button", name="Sign in" if english else "登录").click()
    page.wait_for_url(re.compile(r"/console/inbox"))


def test_claim_from_filling_to_approval_to_finding_it(context: Any, console_url: str) -> None:
    page = context.new_page()
    sign_in(page, console_url, "li")
    for tab in ("待办", "已办", "我发起的", "抄送我的"):
        assert page.get_by_role("link", name=re.compile(tab)).count() == 1

    # Fill the process form: every kind of input, a sub-table with rows added and removed, an attachment.
    page.get_by_role("link", name="表单").click()
    page.get_by_role("link", name="填写 报销单").click()
    page.get_by_label("事由").fill("北京出差 <script>alert(1)</script>")
    page.get_by_label("金额").fill("not a number")
    page.get_by_label("日期").fill("2024-05-06")
    page.get_by_label("类别").select_option("travel")
    page.get_by_label("银行卡").check()
    page.get_by_label("紧急").check()
    page.get_by_label("代办人").fill("wang")
    page.get_by_label("部门 · 搜索部门").fill("财务")  # the picker finds departments by name
    expect(page.locator("#in-departmentSelectField_dept option[value='1']")).to_have_js_property("hidden", True)
    page.get_by_label("部门", exact=True).select_option("2")
    page.get_by_label("备注").fill("第一行\n第二行")
    table = page.locator("[data-table=tableField_items]")
    table.locator("input[name$='.textField_item']").first.fill("机票")
    table.locator("input[name$='.numberField_cost']").first.fill("1200")
    table.get_by_role("button", name="添加一行").click()
    table.locator("input[name$='.textField_item']").nth(1).fill("酒店")
    table.locator("input[name$='.numberField_cost']").nth(1).fill("300")
    table.get_by_role("button", name="添加一行").click()
    table.locator("input[name$='.textField_item']").nth(2).fill("删掉的行")
    table.get_by_role("button", name="删除").nth(2).click()
    page.get_by_label("发票").set_input_files(
        files=[{"name": "发票.pdf", "mimeType": "application/pdf", "buffer": INVOICE}]
    )
    page.locator("[data-upload] li[data-uploaded]").wait_for()
    page.get_by_role("button", name="提交").click()

    # The core refuses the amount: the message is next to the field and everything entered is kept.
    amount_error = page.locator(".field.invalid .field-error")
    assert amount_error.count() == 1 and "数字" in amount_error.inner_text()
    assert page.get_by_label("事由").input_value() == "北京出差 <script>alert(1)</script>"
    assert page.locator("[data-upload] input[type=hidden]").count() == 1
    assert table.locator("input[name$='.textField_item']").count() == 2
    page.get_by_label("金额").fill("1500")
    page.get_by_role("button", name="提交").click()
    page.wait_for_url(re.compile(r"/console/approvals/"))
    instance_id = page.url.rsplit("/", 1)[1]
    assert page.get_by_role("heading", level=1).inner_text() == "李员工发起的报销单"
    data = page.locator("dl.values").first.inner_text()
    for shown in (
        "北京出差 <script>alert(1)</script>",
        "1500",
        "2024-05-06",
        "差旅",
        "银行卡",
        "紧急",
        "王经理",
        "财务部",
    ):
        assert shown in data, shown
    assert page.locator("table.sub tbody tr").count() == 2
    assert page.get_by_role("link", name="发票.pdf").count() == 1
    assert "等待处理" in page.locator(".flow").inner_text()

    # wang approves from his inbox.
    wang = context.browser.new_context(locale="zh-CN")
    wang_page = wang.new_page()
    sign_in(wang_page, console_url, "wang")
    assert int(wang_page.get_by_role("link", name=re.compile("待办")).locator(".count").inner_text()) >= 1
    wang_page.get_by_role("link", name=re.compile("通知")).click()  # the approval's notification leads to it
    wang_page.locator(f"a[href='/console/approvals/{instance_id}']").first.click()
    assert wang_page.get_by_role("link", name="发票.pdf").count() == 1
    wang_page.get_by_label("意见").fill("同意，注意保留票据")
    wang_page.get_by_role("button", name="同意").click()
    wang_page.get_by_role("status").wait_for()
    assert "注意保留票据" in wang_page.locator(".flow").inner_text()
    assert wang_page.get_by_role("button", name="同意").count() == 0
    wang_page.goto(f"{console_url}/console/inbox?tab=done")
    assert wang_page.locator(f"a[href='/console/approvals/{instance_id}']").count() == 1
    wang.close()

    # zhou: refusing needs a comment; then agrees, and the approval is complete.
    zhou = context.browser.new_context(locale="zh-CN")
    zhou_page = zhou.new_page()
    sign_in(zhou_page, console_url, "zhou")
    zhou_page.goto(f"{console_url}/console/approvals/{instance_id}")
    zhou_page.get_by_role("button", name="拒绝").click()
    assert "拒绝时必须填写意见" in zhou_page.get_by_role("alert").inner_text()
    zhou_page.get_by_role("button", name="同意").click()
    zhou_page.get_by_role("status").wait_for()
    assert "已完成" in zhou_page.locator(".meta").inner_text()
    zhou.close()

    # li finds the record by its purpose, opens it and downloads the invoice.
    page.goto(f"{console_url}/console/apps")
    page.get_by_role("link", name="查找记录 报销单").click()
    page.get_by_label("搜索 事由").fill("北京")
    page.get_by_role("button", name="搜索").click()
    rows = page.locator("table.list tbody tr")
    assert rows.count() == 1
    rows.get_by_role("link", name="打开").click()
    page.wait_for_url(re.compile(rf"/console/records/{instance_id}"))
    assert "已完成" in page.locator(".meta").inner_text()
    href = page.get_by_role("link", name="发票.pdf").get_attribute("href")
    download = page.request.get(console_url + href)
    assert download.status == 200 and download.body() == INVOICE
    page.get_by_label("搜索 事由").count() == 0  # noqa: B015 - the record page has no search
    page.goto(f"{console_url}/console/forms/FORM-CONSOLE-CLAIM/records?q=nothing-like-this")
    assert page.locator("table.list").count() == 0


def test_admin_issues_a_credential_that_gets_a_token(context: Any, console_url: str) -> None:
    page = context.new_page()
    sign_in(page, console_url, "adm", english=True)
    for tab in ("To do", "Done", "Submitted", "CC"):
        assert page.get_by_role("link", name=re.compile(f"^{tab}")).count() == 1
    page.get_by_role("link", name="Admin").click()
    page.get_by_label("AppKey").fill("console-made-key")
    page.get_by_label("Every scope (*)").check()
    page.get_by_role("button", name="Create credential").click()
    secret = page.locator("#issued-secret").inner_text()
    assert page.locator("#issued-key").inner_text() == "console-made-key" and len(secret) >= 32
    token = httpx.post(
        f"{console_url}/v1.0/oauth2/accessToken", json={"appKey": "console-made-key", "appSecret": secret}
    )
    assert token.status_code == 200 and token.json()["accessToken"]
    # The secret is shown once: the list never shows it again.
    page.goto(f"{console_url}/console/admin/credentials")
    assert secret not in page.content()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke console-made-key").click()
    page.get_by_role("status").wait_for()
    refused = httpx.post(
        f"{console_url}/v1.0/oauth2/accessToken", json={"appKey": "console-made-key", "appSecret": secret}
    )
    assert refused.status_code != 200
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/console/signin"))
    page.goto(f"{console_url}/console/admin/credentials")
    assert "/console/signin" in page.url


def test_a_phone_sized_screen_and_the_keyboard(browser: Any, console_url: str) -> None:
    phone = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, locale="zh-CN")
    try:
        page = phone.new_page()
        page.goto(f"{console_url}/console/signin?corp={CORP}")
        assert page.evaluate("document.activeElement.id") == "username"  # autofocus
        page.keyboard.type("li")
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORDS[(CORP, "li")])
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/console/inbox"))
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375
    finally:
        phone.close()


def test_records_table_export_and_remarks(context: Any, console_url: str) -> None:
    page = context.new_page()
    sign_in(page, console_url, "li")
    for title in ("note-b 便签", "note-a 便签"):
        page.goto(f"{console_url}/console/forms/FORM-CONSOLE-NOTE/new")
        page.get_by_label("标题").fill(title)
        page.get_by_role("button", name="提交").click()
        page.wait_for_url(re.compile(r"/console/records/.*saved=1"))
    # A remark on the record just saved.
    page.get_by_label("写评论").fill("记得归档 <b>")
    page.get_by_role("button", name="发表评论").click()
    page.wait_for_url(re.compile(r"#remarks$"))
    assert "记得归档 <b>" in page.locator("ol.remarks").inner_text()
    assert "创建" in page.locator("ol.history").inner_text()
    # The table: sorted by a click on the title's header, columns chosen, then exported.
    page.goto(f"{console_url}/console/forms/FORM-CONSOLE-NOTE/records")
    page.get_by_role("link", name="标题").click()
    page.wait_for_url(re.compile(r"sort=textField_title"))
    titles = page.locator("table.list tbody tr td:first-child").all_inner_texts()
    assert titles.index("note-a 便签") < titles.index("note-b 便签")
    page.locator("summary", has_text="显示列").click()
    page.get_by_label("内容").check()
    page.get_by_role("button", name="搜索").click()
    assert page.locator("table.list thead").inner_text().count("内容") == 1
    with page.expect_download() as waiting:
        page.get_by_role("link", name="CSV").click()
    exported = Path(waiting.value.path()).read_bytes().decode("utf-8-sig")
    assert exported.index("note-a 便签") < exported.index("note-b 便签")


def test_association_suggestions_cascade_and_edit_in_the_browser(context: Any, console_url: str) -> None:
    """The association input suggests the linked form's records as one types (``console.js``), a cascade path is
    chosen by its labels, and the saved record is edited from its page."""
    from tests.console.conftest import sign_in as sign_in_over_http

    li = sign_in_over_http(console_url, "li")
    made = li.post("/console/forms/FORM-CONSOLE-SITE/new", {"f.textField_name": "浏览器站点"})
    site = made.headers["location"].split("?")[0].rsplit("/", 1)[1]
    page = context.new_page()
    sign_in(page, console_url, "li")
    page.goto(f"{console_url}/console/forms/FORM-CONSOLE-PLACES/new")
    page.get_by_label("名称").fill("浏览器地点")
    page.get_by_label("区域").select_option(label="浙江 / 杭州")
    page.get_by_label("关联站点").press_sequentially("浏览器")
    expect(page.locator("#list-in-associationFormField_ledger option")).to_have_count(1)
    assert page.locator("#list-in-associationFormField_ledger option").get_attribute("value") == site
    page.get_by_label("关联站点").fill(site)
    page.get_by_role("button", name="提交").click()
    page.wait_for_url(re.compile(r"/console/records/FINST"))
    expect(page.locator("dl.values").first).to_contain_text("浙江 / 杭州")
    page.get_by_role("link", name="编辑").click()
    page.get_by_label("名称").fill("改过的地点")
    page.get_by_role("button", name="保存").click()
    page.wait_for_url(re.compile(r"saved=1"))
    expect(page.locator("ol.history")).to_contain_text("改过的地点")
