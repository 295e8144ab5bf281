"""``/openapi.json`` lists every mounted HTTP route of every dialect (from the routes themselves) and ``/docs`` shows
it only when ``ZIDA_API_DOCS`` is on."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

from tests.conftest import ServerProcess, fresh_database
from zida.server import dialect_mounts


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with fresh_database(tmp_path_factory.mktemp("openapi")) as url:
        proc = ServerProcess(url, ZIDA_API_DOCS="1")
        yield proc
        proc.stop()


def test_every_mounted_route_is_in_the_document(base_url: str) -> None:
    document = httpx.get(f"{base_url}/openapi.json").json()
    assert document["openapi"] == "3.1.0" and document["info"]["title"] == "Zida"
    mounts, _ = dialect_mounts()
    expected = {
        (route.path, method.lower())
        for mount in mounts
        for route in mount.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    listed = {(path, method) for path, methods in document["paths"].items() for method in methods}
    assert listed == expected
    assert len(expected) > 200  # every dialect, not a few routes
    for path in ("/v1.0/yida/forms/instances/{id}", "/topapi/v2/user/get", "/v1/model/{env}/{model}/list"):
        assert path in document["paths"], path


def test_each_operation_says_who_may_call_it_and_how_it_fails(base_url: str) -> None:
    document = httpx.get(f"{base_url}/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    ids = []
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            ids.append(op["operationId"])
            assert op["summary"], (path, method)
            assert [p["name"] for p in op["parameters"]] == re.findall(r"{([^}:]+)", path)
            for requirement in op.get("security", []):
                assert set(requirement) <= set(schemes)
            ref = op["responses"].get("default", {}).get("content", {}).get("application/json", {}).get("schema")
            if ref is not None:
                assert ref["$ref"].rsplit("/", 1)[1] in document["components"]["schemas"]
    assert len(ids) == len(set(ids))  # operation ids are unique
    record = document["paths"]["/v1.0/yida/forms/instances/{id}"]["get"]
    assert record["security"] == [{"dingtalkToken": []}] and record["tags"] == ["dingtalk"]
    assert document["paths"]["/topapi/v2/user/get"]["post"]["security"] == [{"oapiToken": []}]


def test_docs_are_off_unless_enabled(base_url: str, docs_server: ServerProcess) -> None:
    off = httpx.get(f"{base_url}/docs")
    assert off.status_code == 404 and off.json()["error"]["code"] == "route.not_found"
    page = httpx.get(f"http://{docs_server.endpoint}/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/v1.0/yida/forms/instances/{id}" in page.text and "<script" not in page.text


def test_the_document_needs_no_database(tmp_path: Path) -> None:
    mounts, _ = dialect_mounts()
    from zida.openapi import openapi_document

    document = openapi_document(mounts, "test")
    assert document["info"]["version"] == "test" and document["paths"]
