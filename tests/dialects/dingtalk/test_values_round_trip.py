"""Yida over HTTP: a record read back and written again is unchanged (an address and files are read as JSON text), and
a number written as text or searched for is read as its JSON literal is, on the database under test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.dialects.test_limits import Client, Y, cond, limits_corp, marker, ok  # noqa: F401 (limits_corp: a fixture)

ADDRESS = {"address": "文三路 90 号", "regionIds": [330000, 330100, 330106], "regionText": [{"zh_CN": "浙江省"}]}
FILES = [{"downloadUrl": "https://example.com/a.pdf", "name": "a.pdf", "size": 1024}]


@pytest.fixture(scope="module")
def yida(base_url: str, request: pytest.FixtureRequest) -> Iterator[Client]:
    request.getfixturevalue("limits_corp")  # the limits corp loaded (its form has every component)
    c = Client(base_url)
    yield c
    c.http.close()


def read(client: Client, m: str) -> dict[str, Any]:
    reply = ok(client.search({"textField_lt": m}))
    assert reply["totalCount"] == 1, reply
    record: dict[str, Any] = reply["data"][0]
    return record


def test_an_address_and_files_read_back_and_written_again_are_unchanged(yida: Client) -> None:
    client, m = yida, marker()
    ok(client.save({"textField_lt": m, "addressField_lad": ADDRESS, "attachmentField_lat": FILES}))
    record = read(client, m)
    values = {k: record["formData"][k] for k in ("addressField_lad", "attachmentField_lat")}
    assert all(isinstance(v, str) for v in values.values())  # JSON text, as the platform answers
    update = {"formInstanceId": record["formInstanceId"], "updateFormDataJson": json.dumps(values)}
    ok(client.send("PUT", Y, update))
    again = read(client, m)["formData"]
    assert json.loads(again["addressField_lad"]) == ADDRESS and json.loads(again["attachmentField_lat"]) == FILES


def test_numbers_as_text_and_in_searches_are_read_as_their_literals(yida: Client) -> None:
    client, m = yida, marker()
    for number in ('"9007199254740993"', "5e-324", "0.1234567890123456789"):
        ok(client.post(Y, {"formDataJson": f'{{"textField_lt": "{m}", "numberField_ln": {number}}}'}))

    def found(operator: str, value: Any) -> list[Any]:
        conditions = [cond("textField_lt", "eq", m), cond("numberField_ln", operator, value)]
        reply = ok(client.query_all(conditions))
        return sorted(r["formData"]["numberField_ln"] for r in reply["data"])

    assert found("eq", "9007199254740993") == [9007199254740993]
    assert found("eq", 5e-324) == found("eq", "5e-324") == [5e-324]
    assert found("eq", "0.1234567890123456789") == [0.1234567890123456789]
    assert found("gt", "0.1234567890123456789") == [9007199254740993]
