"""Files through real clients: the community dingtalk-sdk's ``media_upload``, the official SDK's ``get_open_url`` and
records with attachments, Zida's download URL over plain HTTP — on a local directory and on S3 (moto.server)."""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from dingtalk.client import AppKeyClient

from tests.conformance.conftest import run_sql
from tests.conformance.sdk import A_ALL, A_READ, APP_A1, B_ALL, Sdk, expect_error
from tests.conftest import ServerProcess
from tests.core.files.s3 import MotoServer, moto_server

__all__ = ["moto_server"]

MAX_BYTES = 2 * 1024 * 1024
PDF = b"%PDF-1.4\n" + b"0123456789" * 30_000 + b"\n%%EOF\n"  # 300 kB
FORM = "FORM-A1ALL"


class Files:
    """One Zida with a files backend, and the clients that talk to it."""

    def __init__(self, server: ServerProcess, url: str) -> None:
        self.server = server
        self.url = url
        self.base = f"http://{server.endpoint}"
        self.sdk = Sdk(server.endpoint)

    def oapi(self, credential: tuple[str, str] = A_ALL) -> AppKeyClient:
        client = AppKeyClient("corpB" if credential == B_ALL else "corpA", credential[0], credential[1])
        client.API_BASE_URL = self.base + "/"
        return client

    def upload(self, data: bytes = PDF, name: str = "发票 2024.pdf", credential: tuple[str, str] = A_ALL) -> str:
        """Upload through dingtalk-sdk's ``message.media_upload``; the ``media_id``."""
        media = io.BytesIO(data)
        media.name = name
        answer = self.oapi(credential).message.media_upload("file", media)
        assert answer["errcode"] == 0, answer
        return str(answer["media_id"])

    def get(self, path: str, credential: tuple[str, str] | None = A_ALL, **headers: str) -> httpx.Response:
        if credential is not None:
            headers["x-acs-dingtalk-access-token"] = self.sdk.token(credential)
        return httpx.get(self.base + path, headers=headers, timeout=30)

    def save(self, data: dict[str, Any], user: str = "admin1") -> str:
        answer = self.sdk.call(
            "save_form_data", **APP_A1, user_id=user, form_uuid=FORM, form_data_json=json.dumps(data)
        )
        return str(answer.body.result)

    def form_data(self, instance_id: str) -> dict[str, Any]:
        answer = self.sdk.call("get_form_data_by_id", instance_id, **APP_A1, user_id="admin1")
        return dict(answer.body.form_data)

    def open_url(self, file_url: str, user: str = "admin1", **fields: Any) -> str:
        answer = self.sdk.call(
            "get_open_url", "APP_A1", system_token=APP_A1["system_token"], file_url=file_url, user_id=user, **fields
        )
        return str(answer.body.result)


@pytest.fixture(scope="module", params=["local", "s3"])
def files(request: pytest.FixtureRequest, loaded_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Files]:
    env = {"ZIDA_FILES_MAX_BYTES": str(MAX_BYTES), "ZIDA_RATE_LIMIT_QPS": "0"}
    if request.param == "local":
        env["ZIDA_FILES_URL"] = f"file://{tmp_path_factory.mktemp('files')}"
    else:
        moto: MotoServer = request.getfixturevalue("moto_server")
        env.update(moto.env(moto.new_bucket()))
    server = ServerProcess(loaded_url, **env)
    yield Files(server, loaded_url)
    server.stop()


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_upload_then_download_with_range_type_disposition_and_etag(files: Files) -> None:
    media_id = files.upload()
    path = f"/ossFileHandle?fileName={media_id}&type=download"
    answer = files.get(path)
    assert answer.status_code == 200 and answer.content == PDF
    assert answer.headers["content-type"].startswith("application/pdf")
    assert answer.headers["x-content-type-options"] == "nosniff"
    disposition = answer.headers["content-disposition"]
    assert (
        disposition.startswith("attachment;") and f"filename*=UTF-8''{quote('发票 2024.pdf', safe='')}" in disposition
    )
    assert 'filename="__ 2024.pdf"' in disposition  # the ASCII fallback
    etag = answer.headers["etag"]
    assert files.get(path, **{"if-none-match": etag}).status_code == 304
    assert files.get(path, **{"if-none-match": '"other"'}).status_code == 200
    part = files.get(path, range="bytes=100-199")
    assert part.status_code == 206 and part.content == PDF[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(PDF)}"
    assert files.get(path, range="bytes=-7").content == PDF[-7:]
    assert files.get(path, range=f"bytes={len(PDF)}-").status_code == 416
    assert files.get(path, range="bytes=-0").status_code == 416
    for ignored in ("items=0-1", "bytes=5-2", "bytes=1-2-3", "bytes=", "bytes=x-"):  # not a byte range: the file
        whole = files.get(path, range=ignored)
        assert whole.status_code == 200 and whole.content == PDF, ignored
    forged = files.get(f"{path}&expires=99999999999999&sig=%E4%B8%AD", None)  # a non-ASCII signature
    assert forged.status_code == 400 and forged.json()["code"] == "InvalidAuthentication"
    head = httpx.head(files.base + path, headers={"x-acs-dingtalk-access-token": files.sdk.token(A_ALL)}, timeout=30)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(PDF)) and head.content == b""
    opened = files.get(f"/ossFileHandle?fileName={media_id}&type=open")
    assert opened.headers["content-disposition"].startswith("inline;")


def test_an_unattached_upload_is_its_uploaders_alone(files: Files) -> None:
    media_id = files.upload()
    path = f"/ossFileHandle?fileName={media_id}"
    assert files.get(path, A_READ).json()["code"] == "noPermission.permission.deny"
    assert files.get(path, B_ALL).json()["code"] == "invalidParameter.parameter.error"  # another corp: no such file
    assert files.get(path, None).json()["code"] == "AuthenticationFailed.MissingParameter"
    assert files.get(path, None, **{"x-acs-dingtalk-access-token": "nope"}).status_code == 400
    assert files.get(f"/ossFileHandle?fileName=FILE-{'0' * 32}").status_code == 400


def test_a_record_attaches_by_file_uuid_or_download_url_and_reads_back_in_full_shape(files: Files) -> None:
    first, second = files.upload(name="合同.pdf"), files.upload(PDF[:1000], name="scan.pdf")
    instance_id = files.save({
        "textField_t1": "报销",
        "attachmentField_at1": [
            {"name": "合同-签字版.pdf", "fileUuid": first},
            {"name": "elsewhere.txt", "downloadUrl": "https://example.com/x.txt"},
        ],
        "imageField_im1": [{"name": "scan.pdf", "downloadUrl": f"/ossFileHandle?fileName={second}&type=download"}],
    })  # fmt: skip
    data = files.form_data(instance_id)
    attachments = json.loads(data["attachmentField_at1"])
    assert attachments[0] == {
        "name": "合同-签字版.pdf",
        "fileUuid": first,
        "size": len(PDF),
        "ext": "pdf",
        "downloadUrl": f"/ossFileHandle?fileName={first}&instId=&type=download",
        "previewUrl": f"/ossFileHandle?fileName={first}&instId=&type=open",
        "url": f"/ossFileHandle?fileName={first}&instId=&type=download",
    }
    assert attachments[1] == {
        "name": "elsewhere.txt",
        "downloadUrl": "https://example.com/x.txt",
    }  # not Zida's: as sent
    image = json.loads(data["imageField_im1"])[0]
    assert (image["fileUuid"], image["size"]) == (second, 1000)
    # Attached: a credential that may read records downloads it now; another corp still cannot.
    assert files.get(_path(attachments[0]["downloadUrl"]), A_READ).content == PDF
    assert files.get(_path(attachments[0]["downloadUrl"]), B_ALL).status_code == 400
    rows = run_sql(files.url, "SELECT attached_at FROM stored_file WHERE file_id = :f", {"f": first})
    assert rows[0]["attached_at"] is not None


def test_an_attachment_naming_a_missing_or_foreign_file_is_refused_and_nothing_saved(files: Files) -> None:
    foreign = files.upload(credential=B_ALL)  # corp B's file
    before = run_sql(files.url, "SELECT COUNT(*) AS n FROM form_instance")[0]["n"]
    for file_id in (foreign, f"FILE-{'Z' * 32}"):
        err = expect_error(
            lambda f=file_id: files.save(
                {"textField_t1": "x", "attachmentField_at1": [{"name": "a.pdf", "fileUuid": f}]}
            ),
            "invalidState.form.invalidFormData",
            400,
        )
        assert "does not exist in this corp" in err.message
    assert run_sql(files.url, "SELECT COUNT(*) AS n FROM form_instance")[0]["n"] == before
    own = files.upload()
    expect_error(
        lambda: files.save({"textField_t1": "x", "attachmentField_at1": [{"name": "../x.pdf", "fileUuid": own}]}),
        "invalidState.form.invalidFormData",
        400,
    )


def test_update_attaches_too(files: Files) -> None:
    instance_id = files.save({"textField_t1": "later"})
    media_id = files.upload(name="later.pdf")
    files.sdk.call("update_form_data", **APP_A1, user_id="admin1", form_instance_id=instance_id,
                   update_form_data_json=json.dumps({"attachmentField_at1": [{"fileUuid": media_id}]}))  # fmt: skip
    item = json.loads(files.form_data(instance_id)["attachmentField_at1"])[0]
    assert (item["name"], item["fileUuid"]) == ("later.pdf", media_id)  # the upload's name when the item has none


def test_temporary_url_works_without_a_token_until_it_expires(files: Files) -> None:
    media_id = files.upload()
    files.save({"textField_t1": "t", "attachmentField_at1": [{"name": "a.pdf", "fileUuid": media_id}]}, user="u1")
    download = f"/ossFileHandle?fileName={media_id}&instId=&type=download"
    url = files.open_url(download, user="u1")
    assert url.startswith(files.base + "/ossFileHandle?")
    answer = httpx.get(url, timeout=30)
    assert answer.status_code == 200 and answer.content == PDF
    query = parse_qs(urlsplit(url).query)
    assert len(query["sig"][0]) == 64
    forged = url.replace(query["sig"][0], "0" * 64)
    assert httpx.get(forged, timeout=30).status_code == 400
    other_file = url.replace(media_id, files.upload())  # the signature is bound to its file
    assert httpx.get(other_file, timeout=30).status_code == 400
    later = url.replace(f"expires={query['expires'][0]}", f"expires={int(query['expires'][0]) + 3_600_000}")
    assert httpx.get(later, timeout=30).status_code == 400
    short = files.open_url(download, user="u1", timeout=1)
    time.sleep(0.05)
    expired = httpx.get(short, timeout=30)
    assert expired.status_code == 400 and "expired" in expired.json()["message"]
    assert "sig=" in files.open_url(media_id, user="admin1", timeout=86_400_000)  # a bare id; the longest timeout


def test_temporary_url_refusals(files: Files) -> None:
    media_id = files.upload()
    files.save({"textField_t1": "t", "attachmentField_at1": [{"fileUuid": media_id}]}, user="u1")
    for timeout in (0, -5, 86_400_001):
        expect_error(lambda t=timeout: files.open_url(media_id, timeout=t), "invalidParameter.parameter.error", 400)
    # u2 may read no record referencing it (not the originator, not an app admin).
    expect_error(lambda: files.open_url(media_id, user="u2"), "noPermission.permission.deny", 400)
    # A file of another corp does not exist here.
    foreign = files.upload(b"corp b", "b.txt", credential=B_ALL)
    expect_error(lambda: files.open_url(f"/ossFileHandle?fileName={foreign}"), "invalidParameter.parameter.error", 400)
    expect_error(lambda: files.open_url("https://example.com/a.pdf"), "invalidParameter.parameter.error", 400)


def test_temporary_url_auth_matrix(files: Files) -> None:
    media_id = files.upload()
    call = lambda token: files.sdk.call(  # noqa: E731
        "get_open_url", "APP_A1", system_token=APP_A1["system_token"], file_url=media_id, user_id="admin1", token=token
    )
    expect_error(lambda: call(None), "AuthenticationFailed.MissingParameter", 400)
    expect_error(lambda: call("bad-token"), "InvalidAuthentication", 400)
    expect_error(lambda: call(files.sdk.token(A_READ)), "Forbidden.AccessDenied.AccessTokenPermissionDenied", 403)
    expect_error(lambda: call(files.sdk.token(B_ALL)), "applicationNotExist.application.notExits", 400)
    expect_error(
        lambda: files.sdk.call("get_open_url", "APP_A1", system_token="wrong", file_url=media_id, user_id="admin1"),
        "invalidParameter.parameter.accessKeyNotMatch",
        400,
    )


def _media_upload(
    files: Files, token: str | None, body: bytes, content_type: str, media_type: str = "file"
) -> dict[str, Any]:
    query = f"?type={media_type}" + (f"&access_token={token}" if token else "")
    answer = httpx.post(
        f"{files.base}/media/upload{query}", content=body, headers={"content-type": content_type}, timeout=30
    )
    assert answer.status_code == 200  # oapi: errors in errcode
    return dict(answer.json())


def _multipart(data: bytes, name: str = "a.txt", field: str = "media") -> tuple[bytes, str]:
    boundary = "zidaboundary42"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()  # fmt: skip
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_media_upload_bad_input(files: Files) -> None:
    token = files.sdk.token(A_ALL)
    count = lambda: run_sql(files.url, "SELECT COUNT(*) AS n FROM stored_file")[0]["n"]  # noqa: E731
    before = count()
    assert _media_upload(files, None, *_multipart(b"x"))["errcode"] == 40014
    assert _media_upload(files, "bad", *_multipart(b"x"))["errcode"] == 40014
    assert _media_upload(files, files.sdk.token(A_READ), *_multipart(b"x"))["errcode"] == 60011
    assert _media_upload(files, token, *_multipart(b"x"), media_type="exe")["errcode"] == 40035
    for body, content_type in (
        _multipart(b""),  # zero bytes
        _multipart(b"x" * (MAX_BYTES + 1)),  # too large
        _multipart(b"x", name="../../etc/passwd"),
        _multipart(b"x", name="a%00b.txt".replace("%00", "\x00")),
        _multipart(b"x", name="n" * 300 + ".txt"),
        _multipart(b"x", field="other"),
        (b"not multipart", "text/plain"),
        (_multipart(b"x" * 1000)[0][:400], _multipart(b"")[1]),  # cut off before its end
    ):
        answer = _media_upload(files, token, body, content_type)
        assert answer["errcode"] == 40035, answer
    assert "ZIDA_FILES_MAX_BYTES" in _media_upload(files, token, *_multipart(b"x" * (MAX_BYTES + 1)))["errmsg"]
    # A chunked body declares no length: the parts before the file are counted as they come (a 3 GB one was read).
    body, content_type = _multipart(b"x")
    field = b'--zidaboundary42\r\nContent-Disposition: form-data; name="note"\r\n\r\n' + b"n" * 200_000 + b"\r\n"

    def chunks() -> Iterator[bytes]:
        yield field
        yield body

    chunked = httpx.post(
        f"{files.base}/media/upload?type=file&access_token={token}",
        content=chunks(),
        headers={"content-type": content_type},
        timeout=30,
    ).json()
    assert chunked["errcode"] == 40035 and "before the file" in chunked["errmsg"], chunked
    empty_parts = b'--zidaboundary42\r\nContent-Disposition: form-data; name="a"\r\n\r\n\r\n' * 200 + body
    many = _media_upload(files, token, empty_parts, content_type)  # they carry no data, and are counted too
    assert many["errcode"] == 40035 and "100 parts" in many["errmsg"], many
    assert httpx.get(f"{files.base}/media/upload?access_token={token}&type=file", timeout=30).json()["errcode"] == 43002
    assert count() == before


def test_admin_upload_and_describe(files: Files) -> None:
    headers = {"authorization": f"Bearer {files.sdk.token(A_ALL)}"}
    answer = httpx.post(f"{files.base}/admin/v1/files?name=合同.pdf", content=PDF, headers=headers, timeout=30)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["name"], body["size"], body["contentType"], body["attached"]) == (
        "合同.pdf",
        len(PDF),
        "application/pdf",
        False,
    )
    assert httpx.get(f"{files.base}/admin/v1/files/{body['fileId']}", headers=headers, timeout=30).json() == body
    assert httpx.get(files.base + body["downloadUrl"], headers=headers, timeout=30).content == PDF
    multipart, content_type = _multipart(b"hello", name="hi.txt", field="file")
    answer = httpx.post(
        f"{files.base}/admin/v1/files", content=multipart, headers={**headers, "content-type": content_type}, timeout=30
    )
    assert answer.status_code == 201 and answer.json()["size"] == 5


def test_admin_upload_refusals(files: Files) -> None:
    token = files.sdk.token(A_ALL)
    headers = {"authorization": f"Bearer {token}"}
    post = lambda body, name="a.bin", **h: httpx.post(  # noqa: E731
        f"{files.base}/admin/v1/files?name={name}", content=body, headers={**headers, **h}, timeout=30
    )
    assert post(b"").status_code == 400 and post(b"").json()["error"]["code"] == "file.empty"
    big = post(b"x" * (MAX_BYTES + 1))
    assert big.status_code == 413 and big.json()["error"]["code"] == "request.too_large"
    assert post(b"x", name="..%2Fx").json()["error"]["code"] == "file.bad_name"
    assert post(b"x", name="").json()["error"]["code"] == "file.bad_name"
    # Auth matrix: no token, a bad token, a token without the admin scope, another corp's file.
    assert httpx.post(f"{files.base}/admin/v1/files?name=a", content=b"x", timeout=30).status_code == 401
    assert post(b"x", authorization="Bearer nope").status_code == 401
    assert post(b"x", authorization=f"Bearer {files.sdk.token(A_READ)}").status_code == 403
    own = post(b"mine").json()["fileId"]
    b_headers = {"authorization": f"Bearer {files.sdk.token(B_ALL)}"}
    assert httpx.get(f"{files.base}/admin/v1/files/{own}", headers=b_headers, timeout=30).status_code == 404


def test_a_wrong_content_length_stores_nothing(files: Files) -> None:
    before = run_sql(files.url, "SELECT COUNT(*) AS n FROM stored_file")[0]["n"]
    host, port = files.server.endpoint.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            b"POST /admin/v1/files?name=cut.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
            + f"Authorization: Bearer {files.sdk.token(A_ALL)}\r\n\r\n".encode()
            + b"x" * 5000
        )
        conn.shutdown(socket.SHUT_WR)  # the client stops before its declared length
        conn.recv(1000)
    time.sleep(0.3)
    assert run_sql(files.url, "SELECT COUNT(*) AS n FROM stored_file")[0]["n"] == before
