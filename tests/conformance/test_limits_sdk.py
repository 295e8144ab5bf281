"""Issue 9's found problems through the official SDK, as a hostile client sent them: each is now a clear 400 in
DingTalk's format (or an answer), never a 500, and nothing is stored.

Writes only to the limits corp (``tests/fixtures/corp_limits.yaml``).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from Tea.exceptions import TeaException

from tests.conformance.sdk import Sdk, expect_error
from tests.conftest import load_fixture_bundle

KEY = ("keyL-all", "secret-l-all-0001")
APP = {"app_type": "APP_LIMITS", "system_token": "ST-LIMITS-SECRET-TOKEN", "user_id": "ladmin"}
FORM = "FORM-LIMITS-ALL"

BAD = "invalidParameter.parameter.error"
EXPECT_NUMBER = "invalidParameter.parameter.expectDoubleButNonNumeric"
FORM_DATA = "invalidState.form.invalidFormData"
TOO_EXPENSIVE = "invalidParameter.request.tooExpensive"


class LimitsSdk(Sdk):
    """The SDK as the limits corp's app admin."""

    def l(self, api: str, *path: str, version: int = 1, **fields: Any) -> Any:  # noqa: E743
        return self.call(api, *path, token=self.token(KEY), version=version, **APP, form_uuid=FORM, **fields)

    def search(self, search: Any, **fields: Any) -> Any:
        return self.l("search_form_datas", search_field_json=_text(search), **fields)

    def query_all(self, conditions: Any, **fields: Any) -> Any:
        return self.l("search_form_data_second_generation", search_condition=_text(conditions), **fields)

    def save(self, values: Any) -> Any:
        return self.l("save_form_data", form_data_json=_text(values))

    def count(self, marker: str) -> int:
        return int(self.search({"textField_lt": marker}).body.total_count)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def cond(key: str, operator: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"key": key, "value": value, "type": "TEXT", "operator": operator, **extra}


def marker() -> str:
    return f"限额-{secrets.token_hex(5)}"


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


@pytest.fixture(scope="module")
def sdk(loaded_url: str, server: Any) -> Iterator[LimitsSdk]:
    load_fixture_bundle(loaded_url, "corp_limits.yaml")
    yield LimitsSdk(server.endpoint)


def refused(call: Any, code: str = BAD, says: str = "") -> TeaException:
    err = expect_error(call, code, 400)
    assert says in err.data["message"] and len(err.data["message"]) < 400, err.data
    return err


# -- 3. 500s from ordinary bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["a" * 50_001, "%" * 25_001, "中" * 17_000], ids=["50001-characters", "25001-percent", "17000-cjk"]
)
def test_a_long_search_value_is_a_clear_error(sdk: LimitsSdk, value: str) -> None:
    refused(lambda: sdk.search({"textField_lt": value}), says="at most 1000 characters")
    for conditions in (
        [cond("title", "like", value)],
        [cond("textField_lt", "contains", value)],
        [cond("textField_lrow", "like", value, parentId="tableField_lrows")],
    ):
        refused(lambda c=conditions: sdk.query_all(c), says="at most 1000 characters")  # type: ignore[misc]


@pytest.mark.parametrize("depth", [300, 1000, 1024, 1100])
def test_deeply_nested_json_is_a_clear_error(sdk: LimitsSdk, depth: int) -> None:
    refused(lambda: sdk.search('{"textField_lt": %s}' % nested(depth)), says="deeper than 64")  # noqa: UP031
    refused(lambda: sdk.query_all(nested(depth)), says="deeper than 64")
    refused(lambda: sdk.l("search_form_datas", dynamic_order=nested(depth)), says="deeper than 64")
    # A scalar parameter sent as nested JSON (the SDK sends what it is given; it copies the value recursively
    # itself, so 300 levels is as deep as it can send).
    refused(lambda: sdk.l("search_form_datas", current_page=json.loads(nested(300))), says="deeper")
    refused(lambda: sdk.save('{"addressField_lad": %s}' % nested(depth)), says="deeper than 64")  # noqa: UP031


def test_a_check_box_condition_of_999_values_is_answered(sdk: LimitsSdk) -> None:
    m = marker()
    options = [f"c{i:02d}" for i in range(1, 13)]
    sdk.save({"textField_lt": m, "checkboxField_lc": options, "checkboxField_lcp": options[:11]})
    values = options + [f"other-{i}" for i in range(987)]
    for field in ("checkboxField_lc", "checkboxField_lcp"):
        assert int(sdk.search({"textField_lt": m, field: values}).body.total_count) == 0
        assert int(sdk.search({"textField_lt": m, field: options[:11]}).body.total_count) == 1
        body = sdk.query_all([cond("textField_lt", "eq", m), cond(field, "in", values[::-1])]).body
        assert int(body.total_count) == 1


def test_sixty_conditions_of_a_thousand_values_are_refused_at_once(sdk: LimitsSdk) -> None:
    # Issue 9 found 1: this froze a SQLite server for 40 s. The budget refuses it before any statement runs.
    conditions = [cond("textField_lt", "in", [f"v{i}-{j}" for j in range(1000)]) for i in range(60)]
    started = time.monotonic()
    refused(lambda: sdk.query_all(conditions), TOO_EXPENSIVE)
    assert time.monotonic() - started < 10


# -- 4. no size limits ---------------------------------------------------------------------------------------------


def test_a_ten_megabyte_batch_of_100_kb_texts_is_refused(sdk: LimitsSdk) -> None:
    m = marker()
    items = [json.dumps({"textField_lt": m, "textareaField_la": "x" * 100_000}) for _ in range(100)]
    refused(
        lambda: sdk.l("batch_save_form_data", form_data_json_list=items, no_execute_expression=True),
        FORM_DATA,
        says="at most 50000",
    )
    assert sdk.count(m) == 0


def test_a_record_past_its_size_is_refused(sdk: LimitsSdk) -> None:
    m = marker()
    half = "中" * 50_000
    refused(lambda: sdk.save({"textField_lt": m, "textareaField_la": half, "textareaField_lb": half}), FORM_DATA)
    assert sdk.count(m) == 0


# -- 7. smaller ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", [1.5, "1.5", "１", "١"], ids=["float", "text-float", "full-width", "arabic-indic"])
def test_current_page_must_be_a_whole_ascii_number(sdk: LimitsSdk, page: Any) -> None:
    refused(lambda: sdk.search({}, current_page=page), says="currentPage")
    refused(lambda: sdk.search({}, page_size=page), says="pageSize")


def test_a_text_field_keeps_the_digits_of_an_integer_wider_than_64_bits(sdk: LimitsSdk) -> None:
    # Python's json writes the integer as it is; the platform reads it exactly, and so does Zida now.
    m = marker()
    wide = 123456789012345678901234567890
    sdk.save(json.dumps({"textField_lt": m, "textField_plain": wide, "numberField_ln": wide}))
    [found] = sdk.search({"textField_lt": m}).body.data
    assert found.form_data["textField_plain"] == str(wide)
    assert found.form_data["numberField_ln"] == float(wide)


def test_a_tiny_number_is_refused_as_a_literal_and_as_text(sdk: LimitsSdk) -> None:
    m = marker()
    refused(lambda: sdk.save('{"textField_lt": "%s", "numberField_ln": 1e-400}' % m), says="out of the range")  # noqa: UP031
    refused(lambda: sdk.save({"textField_lt": m, "numberField_ln": "1e-400"}), EXPECT_NUMBER)
    assert sdk.count(m) == 0
    sdk.save('{"textField_lt": "%s", "numberField_ln": 1e-300}' % m)  # noqa: UP031
    assert sdk.count(m) == 1
