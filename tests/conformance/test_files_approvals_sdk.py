"""Files in approvals through the official SDK: an expense claim started with an invoice, read back in the platform's
shape, a temporary URL for its approver and not for a stranger, an attachment added by updating the approval."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from dingtalk.client import AppKeyClient

from tests.conformance.sdk import Sdk, expect_error
from tests.conftest import ServerProcess, load_fixture_bundle

CREDENTIAL = ("files-all", "files-secret-all-01")
APP = {"app_type": "APP_FILES", "system_token": "ST-FILES-SECRET"}
FORM = "FORM-FILES-CLAIM"
INVOICE = b"%PDF-1.7\n" + "发票".encode() * 2000


class Claims:
    def __init__(self, server: ServerProcess) -> None:
        self.base = f"http://{server.endpoint}"
        self.sdk = Sdk(server.endpoint)
        self.oapi = AppKeyClient("corpFiles", *CREDENTIAL)
        self.oapi.API_BASE_URL = self.base + "/"

    def upload(self, data: bytes, name: str) -> str:
        media = io.BytesIO(data)
        media.name = name
        return str(self.oapi.message.media_upload("file", media)["media_id"])

    def call(self, api: str, *path: str, **fields: Any) -> Any:
        return self.sdk.call(api, *path, token=self.sdk.token(CREDENTIAL), **fields)

    def open_url(self, file_url: str, user: str) -> str:
        answer = self.call(
            "get_open_url", "APP_FILES", system_token=APP["system_token"], file_url=file_url, user_id=user
        )
        return str(answer.body.result)


@pytest.fixture(scope="module")
def claims(loaded_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Claims]:
    load_fixture_bundle(loaded_url, "corp_files.yaml")
    files_url = f"file://{tmp_path_factory.mktemp('claims')}"
    server = ServerProcess(loaded_url, ZIDA_FILES_URL=files_url, ZIDA_RATE_LIMIT_QPS="0")
    yield Claims(server)
    server.stop()


def test_an_approval_carries_its_invoice(claims: Claims) -> None:
    invoice = claims.upload(INVOICE, "发票-2024.pdf")
    data = {"textField_title": "差旅报销", "attachmentField_invoice": [{"name": "发票.pdf", "fileUuid": invoice}]}
    started = claims.call("start_instance", **APP, user_id="li", form_uuid=FORM, form_data_json=json.dumps(data))
    instance_id = started.body.result
    shown = claims.call("get_instance_by_id", instance_id, **APP, user_id="adm").body.data
    item = json.loads(shown["attachmentField_invoice"])[0]
    assert item["fileUuid"] == invoice and item["size"] == len(INVOICE) and item["name"] == "发票.pdf"

    # The approver may read it through a temporary URL, as may the originator; a stranger may not.
    for user in ("wang", "li", "adm"):
        assert httpx.get(claims.open_url(item["downloadUrl"], user), timeout=30).content == INVOICE
    expect_error(lambda: claims.open_url(item["downloadUrl"], "out"), "noPermission.permission.deny", 400)

    # Updating the approval attaches a photo.
    photo = claims.upload(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "现场.png")
    claims.call(
        "update_instance", **APP, user_id="adm", process_instance_id=instance_id,
        update_form_data_json=json.dumps({"imageField_photo": [{"fileUuid": photo}]}),
    )  # fmt: skip
    shown = claims.call("get_instance_by_id", instance_id, **APP, user_id="adm").body.data
    image = json.loads(shown["imageField_photo"])[0]
    assert (image["fileUuid"], image["ext"], image["name"]) == (photo, "png", "现场.png")
    opened = httpx.get(claims.open_url(image["previewUrl"], "wang").replace("type=download", "type=open"), timeout=30)
    assert opened.status_code == 200 and opened.headers["content-type"] == "image/png"


def test_an_approval_naming_an_unknown_file_is_not_started(claims: Claims) -> None:
    data = {"textField_title": "x", "attachmentField_invoice": [{"name": "a.pdf", "fileUuid": "FILE-" + "Q" * 32}]}
    expect_error(
        lambda: claims.call("start_instance", **APP, user_id="li", form_uuid=FORM, form_data_json=json.dumps(data)),
        "invalidState.form.invalidFormData",
        400,
    )
