"""Serial numbers through the official SDK: a record saved without its SerialNumberFields gets them from the
form's rules (``zida.core.records.serials``), read back by ``getFormDataById``, returned as the record's ``serialNo``
and ``sequence`` by ``searchFormDatas`` and searchable; an approval started with ``startInstance`` is numbered too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from tests.conformance.sdk import Sdk
from tests.conftest import ServerProcess, load_fixture_bundle

SERIALS = ("serials-all", "serials-secret-0001")
APP = {"app_type": "APP_SERIALS", "system_token": "ST-SERIALS-000001"}


@pytest.fixture(scope="module")
def sdk(server: ServerProcess, loaded_url: str) -> Iterator[Sdk]:
    load_fixture_bundle(loaded_url, "corp_serials.yaml")
    yield Sdk(server.endpoint)


def call(sdk: Sdk, api: str, *path: str, **fields: object) -> object:
    return sdk.call(api, *path, token=sdk.token(SERIALS), **APP, **fields).body


def test_a_saved_record_reads_back_its_generated_numbers(sdk: Sdk) -> None:
    note = f"sdk-{datetime.now().timestamp()}"
    days = {datetime.now(timezone(timedelta(hours=8))).strftime("%Y%m%d")}
    saved = call(sdk, "save_form_data", user_id="li", form_uuid="FORM-SERIAL-CLAIM",
                 form_data_json=json.dumps({"textField_note": note, "selectField_kind": "办公"}))  # fmt: skip
    instance_id = saved.result  # type: ignore[attr-defined]
    got = call(sdk, "get_form_data_by_id", instance_id, user_id="li")
    data = got.form_data  # type: ignore[attr-defined]
    days.add(datetime.now(timezone(timedelta(hours=8))).strftime("%Y%m%d"))  # the save's day is one of these
    number = data["serialNumberField_no"]
    assert number[:2] == "BX" and number[2:10] in days and len(number) == 13
    assert data["serialNumberField_plain"].isdigit() and data["serialNumberField_kind"].startswith("办公-")
    found = call(sdk, "search_form_datas", form_uuid="FORM-SERIAL-CLAIM", user_id="li",
                 search_field_json=json.dumps({"serialNumberField_no": number}))  # fmt: skip
    (item,) = found.data  # type: ignore[attr-defined]
    assert (item.form_instance_id, item.serial_no, item.sequence) == (instance_id, number, number)


def test_a_started_approval_is_numbered(sdk: Sdk) -> None:
    started = call(sdk, "start_instance", user_id="li", form_uuid="FORM-SERIAL-TRIP",
                   form_data_json=json.dumps({"textField_where": "杭州"}))  # fmt: skip
    instance_id = started.result  # type: ignore[attr-defined]
    data = call(sdk, "get_form_data_by_id", instance_id, user_id="li").form_data  # type: ignore[attr-defined]
    assert data["serialNumberField_trip"].startswith("CC") and len(data["serialNumberField_trip"]) == 6
