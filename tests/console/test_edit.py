"""The console's remaining components and record editing over plain HTTP: address, country, city, cascade (an
options tree and free levels), association (a search of the linked form, ids checked readable), serial number
(shown, never entered); editing a plain record and a process record through the core's update (who may is the
access policy's), its history row, errors next to the field, CSRF and another corp."""

from __future__ import annotations

import json

from tests.console.conftest import OTHER_CORP, SignedIn, sign_in
from tests.console.test_security import _submit_claim
from zida.console.fields import day_of

PLACES = "FORM-CONSOLE-PLACES"
SITE = "FORM-CONSOLE-SITE"


def _saved_id(answer: object) -> str:
    location = answer.headers["location"]  # type: ignore[attr-defined]
    assert location.endswith("?saved=1"), location
    return str(location.split("?")[0].rsplit("/", 1)[1])


def _site(li: SignedIn, name: str) -> str:
    answer = li.post(f"/console/forms/{SITE}/new", {"f.textField_name": name})
    assert answer.status_code == 303, answer.text
    return _saved_id(answer)


def _api_values(console_url: str, instance_id: str) -> dict[str, object]:
    import httpx

    token = httpx.post(
        f"{console_url}/v1.0/oauth2/accessToken", json={"appKey": "console-all", "appSecret": "console-secret-all-01"}
    ).json()["accessToken"]
    found = httpx.get(
        f"{console_url}/v1.0/yida/forms/instances/{instance_id}",
        params={"appType": "APP_CONSOLE", "systemToken": "ST-CONSOLE-SECRET", "userId": "adm"},
        headers={"x-acs-dingtalk-access-token": token},
    )
    assert found.status_code == 200, found.text
    return dict(found.json()["formData"])


def test_every_remaining_component_is_filled_with_the_cores_values(console_url: str) -> None:
    li = sign_in(console_url, "li")
    site = _site(li, "西湖站点")
    page = li.get(f"/console/forms/{PLACES}/new").text
    # The cascade's paths from the options tree (labels escaped), the serial number read-only, the association's search.
    assert "浙江 / 杭州" in page and "浙江 / 宁波 &lt;b&gt;" in page and "<b>" not in page
    assert 'readonly aria-readonly="true"' in page and "由系统生成" in page
    assert f'data-suggest="/console/forms/{PLACES}/associations/associationFormField_ledger"' in page
    found = li.get(f"/console/forms/{PLACES}/associations/associationFormField_ledger?q=西湖").json()
    assert [s["id"] for s in found] == [site] and "西湖站点" in found[0]["name"]
    assert (
        sign_in(console_url, "out")
        .get(f"/console/forms/{PLACES}/associations/associationFormField_ledger?q=西湖")
        .json()
        == []
    )  # out may not read li's site
    assert li.get(f"/console/forms/{PLACES}/associations/textField_name?q=x").status_code == 404
    # Wrong input: each error next to its field, everything kept.
    bad_input = {
        "f.textField_name": "坏的",
        "f.countrySelectField_country": "CN, 中国",
        "f.cascadeSelectField_area": '["zj","xx"]',
        "f.associationFormField_ledger": f"{site}, FINST-NOPE",
        "f.addressField_where": "西湖区 <i>",
    }
    bad = li.post(f"/console/forms/{PLACES}/new", bad_input)
    assert bad.status_code == 400
    for field in ("countrySelectField_country", "cascadeSelectField_area", "associationFormField_ledger"):
        assert f'id="err-{field}"' in bad.text, field
    assert "FINST-NOPE" in bad.text and 'value="西湖区 &lt;i&gt;"' in bad.text
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    uploaded = li.client.post(
        "/console/files", files={"file": ("签名.png", png, "image/png")}, headers={"x-csrf-token": li.csrf}
    )
    assert uploaded.status_code == 201, uploaded.text
    signature = uploaded.json()["fileId"]
    good_input = {
        "f.textField_name": "总部",
        "f.addressField_where": "西湖区文三路 1 号",
        "f.countrySelectField_country": "cn us",
        "f.citySelectField_city": "浙江省 / 杭州市",
        "f.cascadeSelectField_area": '["zj","hz"]',
        "f.cascadeSelectField_free": "硬件/存储",
        "f.associationFormField_ledger": site,
        "f.serialNumberField_no": "SN-FORGED",
        "f.digitalSignatureField_sign": signature,
    }
    saved = li.post(f"/console/forms/{PLACES}/new", good_input)
    assert saved.status_code == 303, saved.text
    record_id = _saved_id(saved)
    values = _api_values(console_url, record_id)
    assert json.loads(str(values["addressField_where"])) == {"address": "西湖区文三路 1 号"}  # Yida: JSON text
    assert values["countrySelectField_country"] == [{"value": "CN"}, {"value": "US"}]
    assert values["citySelectField_city"] == ["浙江省", "杭州市"]
    assert values["cascadeSelectField_area"] == ["zj", "hz"]
    assert values["cascadeSelectField_free"] == ["硬件", "存储"]
    linked = values["associationFormField_ledger"]
    assert isinstance(linked, list) and linked[0]["instanceId"] == site and linked[0]["formUuid"] == SITE
    number = values["serialNumberField_no"]  # required, not the user's to write: the form's rule numbered it
    assert isinstance(number, str) and number.startswith("ZD-") and len(number) == 7
    assert values["digitalSignatureField_sign"] == signature  # the core's string: the file id, now attached
    shown = li.get(f"/console/records/{record_id}").text
    image = f'src="/console/records/{record_id}/files/{signature}?type=open"'
    assert image in shown and 'class="signature"' in shown
    assert li.get(f"/console/records/{record_id}/files/{signature}?type=open").content == png
    assert sign_in(console_url, "out").get(f"/console/records/{record_id}/files/{signature}").status_code == 403
    adm = sign_in(console_url, "adm")  # another reader of the record (an app admin) sees it too: it is attached
    assert adm.get(f"/console/records/{record_id}/files/{signature}").status_code == 200
    assert number in shown and "SN-FORGED" not in shown
    assert "西湖区文三路 1 号" in shown and "CN, US" in shown and "浙江 / 杭州" in shown and "浙江省 / 杭州市" in shown


def test_a_plain_record_is_edited_through_the_core_with_its_history(console_url: str) -> None:
    li = sign_in(console_url, "li")
    saved = li.post(
        f"/console/forms/{PLACES}/new",
        {"f.textField_name": "旧名", "f.addressField_where": "旧地址", "f.cascadeSelectField_area": '["sh"]'},
    )
    record_id = _saved_id(saved)
    record_page = li.get(f"/console/records/{record_id}").text
    assert f'href="/console/records/{record_id}/edit"' in record_page
    form = li.get(f"/console/records/{record_id}/edit").text
    assert 'value="旧名"' in form and 'value="旧地址"' in form
    assert 'value="[&#34;sh&#34;]" selected' in form
    # An error is shown next to the field and nothing changes.
    bad = li.post(f"/console/records/{record_id}/edit", {"f.textField_name": "", "f.addressField_where": "新地址"})
    assert bad.status_code == 400 and 'id="err-textField_name"' in bad.text
    assert json.loads(str(_api_values(console_url, record_id)["addressField_where"])) == {"address": "旧地址"}
    # Others may read it or not, but not change it; another corp finds nothing; CSRF refused.
    assert sign_in(console_url, "out").get(f"/console/records/{record_id}/edit").status_code == 403
    other = sign_in(console_url, "li", OTHER_CORP)
    assert other.get(f"/console/records/{record_id}/edit").status_code == 404
    assert other.post(f"/console/records/{record_id}/edit", {"f.textField_name": "别家"}).status_code == 404
    assert li.post(f"/console/records/{record_id}/edit", {"f.textField_name": "x"}, csrf="").status_code == 403
    edited = li.post(
        f"/console/records/{record_id}/edit",
        {"f.textField_name": "新名 <b>", "f.addressField_where": "旧地址", "f.cascadeSelectField_area": '["sh"]'},
    )
    assert edited.status_code == 303 and edited.headers["location"] == f"/console/records/{record_id}?saved=1"
    values = _api_values(console_url, record_id)
    assert values["textField_name"] == "新名 <b>" and values["cascadeSelectField_area"] == ["sh"]
    page = li.get(f"/console/records/{record_id}").text
    history = page[page.index('id="history-h"') :]
    assert "旧名" in history and "新名 &lt;b&gt;" in history and "<b>" not in history
    assert history.count("<td>") >= 3  # one changed field: its label, before and after
    # Nothing changed: no update, no history row.
    rows = history.count("<li>")
    again = li.post(
        f"/console/records/{record_id}/edit",
        {"f.textField_name": "新名 <b>", "f.addressField_where": "旧地址", "f.cascadeSelectField_area": '["sh"]'},
    )
    assert again.status_code == 303
    page = li.get(f"/console/records/{record_id}").text
    assert page[page.index('id="history-h"') :].count("<li>") == rows


def test_a_process_record_is_edited_only_as_its_approval_allows(console_url: str) -> None:
    li = sign_in(console_url, "li")
    claim = _submit_claim(li, "编辑测试报销")
    wang = sign_in(console_url, "wang")  # holds the running task
    assert f'href="/console/records/{claim}/edit"' in wang.get(f"/console/records/{claim}").text
    form = wang.get(f"/console/records/{claim}/edit").text
    assert 'value="编辑测试报销"' in form and 'value="出租车"' in form
    edited = wang.post(
        f"/console/records/{claim}/edit",
        {"f.textField_title": "编辑测试报销", "f.numberField_amount": "20",
         "t.tableField_items.0.textField_item": "出租车", "t.tableField_items.0.numberField_cost": "12.5"},
    )  # fmt: skip
    assert edited.status_code == 303, edited.text
    values = _api_values(console_url, claim)
    assert values["numberField_amount"] == 20 and values["textField_title"] == "编辑测试报销"
    items = values["tableField_items"]
    assert isinstance(items, list) and items[0]["textField_item"] == "出租车"
    # zhou's turn has not come: no edit offered, and none taken.
    zhou = sign_in(console_url, "zhou")
    assert f"/console/records/{claim}/edit" not in zhou.get(f"/console/records/{claim}").text
    assert zhou.post(f"/console/records/{claim}/edit", {"f.numberField_amount": "1"}).status_code == 403
    # Once finished only an app admin may change it (the policy's rule): li's edit is refused.
    li.post(f"/console/approvals/{claim}", {"action": "terminate"})
    assert f"/console/records/{claim}/edit" not in li.get(f"/console/records/{claim}").text
    refused = li.post(f"/console/records/{claim}/edit", {"f.textField_title": "改", "f.numberField_amount": "1"})
    assert refused.status_code == 409
    assert _api_values(console_url, claim)["numberField_amount"] == 20


def test_a_claim_dated_year_one_is_shown_not_a_500(console_url: str) -> None:
    li = sign_in(console_url, "li")
    answer = li.post(
        "/console/forms/FORM-CONSOLE-CLAIM/new",
        {"f.textField_title": "元年", "f.numberField_amount": "1", "f.dateField_day": "0001-01-01"},
    )
    assert answer.status_code == 303, answer.text
    claim = answer.headers["location"].rsplit("/", 1)[1]
    for path in (f"/console/approvals/{claim}", f"/console/records/{claim}", f"/console/records/{claim}/edit",
                 "/console/forms/FORM-CONSOLE-CLAIM/records?cols=dateField_day"):  # fmt: skip
        assert li.get(path).status_code == 200, path


def test_a_date_no_calendar_holds_is_shown_as_its_milliseconds() -> None:
    # The records core stores dates within ±8.64e15 ms; 0001-01-01 entered in UTC+8 is an instant before year 1
    # there. Showing it was a ValueError, and every page showing the record (the list's first page among them) a 500.
    year_one_shanghai = -62135625943000
    assert day_of(year_one_shanghai, "Asia/Shanghai") == str(year_one_shanghai)
    assert day_of(8_640_000_000_000_000, "Asia/Shanghai") == "8640000000000000"
    assert day_of(0, "Asia/Shanghai") == "1970-01-01"
