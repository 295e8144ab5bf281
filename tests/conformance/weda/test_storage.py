"""WeDa cloud storage through plain HTTP, following the documented two-step upload: ``get-objects-upload-info`` →
``PUT`` the bytes with the returned headers → ``get-objects-download-info`` (``maxAge``) → ``delete-objects``; on a
local directory and on S3 (moto.server)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conformance.conftest import run_sql
from tests.conftest import SECRET_KEY, ServerProcess
from tests.core.files.s3 import MotoServer, moto_server
from tests.dialects.weda.conftest import ENV_ID, OTHER_SECRET, READ_ONLY, credential_token, user_token
from zida.core.files.attachments import StoredObject, zida_file_of
from zida.dialects.weda import storage as weda_storage

__all__ = ["moto_server"]

JPEG = b"\xff\xd8\xff\xe0" + b"photo-bytes" * 5000
PREFIX = f"cloud://{ENV_ID}.zida/"


class Storage:
    def __init__(self, server: ServerProcess, url: str) -> None:
        self.server = server
        self.url = url
        self.base = f"http://{server.endpoint}"
        self.token = credential_token(self.base)

    def post(self, op: str, body: Any, token: str | None = None) -> httpx.Response:
        headers = {"authorization": f"Bearer {token or self.token}"}
        return httpx.post(f"{self.base}/v1/storages/{op}", json=body, headers=headers, timeout=30)

    def upload_info(self, *object_ids: str) -> list[dict[str, Any]]:
        answer = self.post("get-objects-upload-info", [{"objectId": o} for o in object_ids])
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-request-id"]
        return list(answer.json())

    def put(self, info: dict[str, Any], data: bytes, **override: str) -> httpx.Response:
        headers = {
            "Authorization": info["authorization"],
            "X-Cos-Security-Token": info["token"],
            "X-Cos-Meta-Fileid": info["cloudObjectMeta"],
            **override,
        }
        return httpx.put(info["uploadUrl"], content=data, headers=headers, timeout=30)

    def upload(self, object_id: str, data: bytes = JPEG) -> str:
        info = self.upload_info(object_id)[0]
        assert self.put(info, data).status_code == 200
        return str(info["cloudObjectId"])

    def count(self) -> int:
        return int(run_sql(self.url, "SELECT COUNT(*) AS n FROM stored_file")[0]["n"])


@pytest.fixture(scope="module", params=["local", "s3"])
def storage(
    request: pytest.FixtureRequest, weda_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Storage]:
    env = {"ZIDA_FILES_MAX_BYTES": str(1024 * 1024), "ZIDA_RATE_LIMIT_QPS": "0"}
    if request.param == "local":
        env["ZIDA_FILES_URL"] = f"file://{tmp_path_factory.mktemp('weda-files')}"
    else:
        moto: MotoServer = request.getfixturevalue("moto_server")
        env.update(moto.env(moto.new_bucket()))
    # Each backend starts with no WeDa objects (the other backend's rows name bytes this one does not hold).
    run_sql(weda_url, "DELETE FROM stored_file WHERE object_path IS NOT NULL")
    server = ServerProcess(weda_url, **env)
    yield Storage(server, weda_url)
    server.stop()


def test_the_documented_two_step_upload_download_and_delete(storage: Storage) -> None:
    info = storage.upload_info("expense/2024/发票.jpg")[0]
    assert set(info) == {
        "objectId", "uploadUrl", "authorization", "token", "cloudObjectMeta", "downloadUrl", "downloadUrlEncoded",
        "cloudObjectId",
    }  # fmt: skip
    assert info["cloudObjectId"] == PREFIX + "expense/2024/发票.jpg"
    # What the upload returned names the object in a record's attachment (zida.core.files.attachments).
    assert zida_file_of({"url": info["cloudObjectId"]}) == StoredObject("expense/2024/发票.jpg", ENV_ID)
    assert zida_file_of({"downloadUrl": info["downloadUrl"]}) == StoredObject("expense/2024/发票.jpg")
    assert storage.put(info, JPEG).status_code == 200
    assert httpx.get(info["downloadUrl"], timeout=30).content == JPEG
    answer = storage.post("get-objects-download-info", [{"cloudObjectId": info["cloudObjectId"], "maxAge": 60}])
    item = answer.json()[0]
    assert item["cloudObjectId"] == info["cloudObjectId"]
    got = httpx.get(item["downloadUrl"], timeout=30)
    assert got.status_code == 200 and got.content == JPEG and got.headers["content-type"] == "image/jpeg"
    assert "filename*=UTF-8''%E5%8F%91%E7%A5%A8.jpg" in got.headers["content-disposition"]
    assert httpx.get(item["downloadUrlEncoded"], timeout=30).content == JPEG
    deleted = storage.post("delete-objects", [{"cloudObjectId": info["cloudObjectId"]}]).json()
    assert deleted == [{"cloudObjectId": info["cloudObjectId"]}]
    gone = httpx.get(item["downloadUrl"], timeout=30)  # in the storage API's format, not another dialect's
    assert gone.status_code == 404 and gone.json()["code"] == "OBJECT_NOT_EXIST" and gone.json()["requestId"]
    forged = httpx.get(item["downloadUrl"].replace("sig=", "sig=0"), timeout=30)
    assert forged.status_code == 403 and forged.json()["code"] == "SIGN_PARAM_INVALID"
    again = storage.post("delete-objects", [{"cloudObjectId": info["cloudObjectId"]}]).json()[0]
    assert again["code"] == "OBJECT_NOT_EXIST" and again["cloudObjectId"] == info["cloudObjectId"]


def test_per_item_errors_are_inline(storage: Storage) -> None:
    good = storage.upload("inline/good.jpg")
    # The last: a file name of 300 characters, whose upload could never succeed (no slot is handed out for it).
    bad = ("../escape.txt", "/abs.txt", "a/./b", "a\x01b", "x" * 1025, "dir/" + "n" * 300)
    infos = storage.upload_info("ok/a.txt", *bad, "inline/good.jpg")
    assert "uploadUrl" in infos[0]
    assert [i["code"] for i in infos[1:]] == ["INVALID_PARAM"] * 6 + ["OBJECT_ALREADY_EXIST"]
    nul = storage.post("get-objects-upload-info", [{"objectId": "a\x00b"}])  # a NUL anywhere: the whole request
    assert nul.status_code == 400 and nul.json()["code"] == "INVALID_PARAM"
    answer = storage.post(
        "get-objects-download-info",
        [{"cloudObjectId": good}, {"cloudObjectId": PREFIX + "nope.jpg"}, {"cloudObjectId": "cloud://other.zida/x"},
         {"cloudObjectId": good, "maxAge": 0}, {"cloudObjectId": good, "maxAge": 86_401}, "not an object"],
    ).json()  # fmt: skip
    assert "downloadUrl" in answer[0]
    assert [a["code"] for a in answer[1:]] == ["OBJECT_NOT_EXIST"] + ["INVALID_PARAM"] * 4


def test_the_put_refuses_forged_expired_mismatched_and_bad_bodies(storage: Storage) -> None:
    before = storage.count()
    info = storage.upload_info("put/refused.jpg")[0]
    assert storage.put(info, JPEG, Authorization="0" * 64).json()["code"] == "SIGN_PARAM_INVALID"
    assert storage.put(info, JPEG, **{"X-Cos-Security-Token": "other"}).status_code == 403
    assert storage.put(info, JPEG, **{"X-Cos-Meta-Fileid": "b3RoZXI"}).status_code == 403
    utf8 = ("é" * 64).encode()  # not ASCII: refused, not a crash
    assert storage.put(info, JPEG, Authorization=utf8).status_code == 403  # type: ignore[arg-type]
    forged = dict(info, uploadUrl=info["uploadUrl"].replace("slot=", "slot=x"))
    assert storage.put(forged, JPEG).status_code == 403
    assert storage.put(info, b"").json()["code"] == "INVALID_PARAM"  # zero bytes
    big = storage.put(info, b"x" * (1024 * 1024 + 1))
    assert big.status_code == 413 and big.json()["code"] == "EXCEED_REQUEST_SIZE_LIMIT"
    assert storage.count() == before
    assert storage.put(info, JPEG).status_code == 200
    assert storage.put(info, JPEG).json()["code"] == "OBJECT_ALREADY_EXIST"  # a second PUT of the slot


def test_an_expired_or_edited_upload_url_is_refused(storage: Storage) -> None:
    info = storage.upload_info("put/expired.jpg")[0]
    slot = info["uploadUrl"].split("slot=")[1]
    fields = base64.urlsafe_b64decode(slot + "=" * (-len(slot) % 4))
    edited = weda_storage._b64(fields.replace(b'"e":', b'"e":1'))  # a later expiry: not signed
    assert storage.put(dict(info, uploadUrl=info["uploadUrl"].replace(slot, edited)), JPEG).status_code == 403
    # A slot the server signed that expired a moment ago.
    corp_pk = run_sql(storage.url, "SELECT id FROM corp WHERE corp_id = 'corpWeda'")[0]["id"]
    payload, signature = weda_storage._slot(SECRET_KEY, corp_pk, "put/expired.jpg", int(time.time() * 1000) - 1, "n")
    url = info["uploadUrl"].split("?")[0] + f"?slot={payload}"
    headers = {"Authorization": signature, "X-Cos-Security-Token": "n", "X-Cos-Meta-Fileid": info["cloudObjectMeta"]}
    answer = httpx.put(url, content=JPEG, headers=headers, timeout=30)
    assert answer.status_code == 403 and "expired" in answer.json()["message"]


def test_auth_matrix(storage: Storage) -> None:
    body = [{"objectId": "auth/a.txt"}]
    for op in ("get-objects-upload-info", "get-objects-download-info", "delete-objects"):
        no_token = httpx.post(f"{storage.base}/v1/storages/{op}", json=body, timeout=30)
        assert no_token.status_code == 401 and no_token.json()["code"] == "MISSING_CREDENTIALS"
        bad = storage.post(op, body, token="bad")  # in the words of the rest of WeDa's gateway
        assert bad.status_code == 401 and bad.json()["code"] == "INVALID_ACCESS_TOKEN"
        assert bad.json()["message"] == "access token verify failed: invalid token"
    read_only = credential_token(storage.base, READ_ONLY)
    assert storage.post("get-objects-upload-info", body, token=read_only).json()["code"] == "ACTION_FORBIDDEN"
    assert storage.post("delete-objects", [{"cloudObjectId": PREFIX + "a"}], token=read_only).status_code == 403
    # Another environment's objects do not exist for it.
    mine = storage.upload("auth/mine.jpg")
    other = credential_token(storage.base, OTHER_SECRET)
    for op in ("get-objects-download-info", "delete-objects"):
        assert storage.post(op, [{"cloudObjectId": mine}], token=other).json()[0]["code"] == "INVALID_PARAM"
    readable = storage.post("get-objects-download-info", [{"cloudObjectId": mine}], token=read_only).json()[0]
    assert readable["downloadUrl"]
    assert storage.post("get-objects-upload-info", {"objectId": "x"}).json()["code"] == "INVALID_PARAM"
    assert storage.post("get-objects-upload-info", [{"objectId": f"b/{i}"} for i in range(101)]).json()["code"] == (
        "OBJECT_BATCH_TOO_LARGE"
    )


def test_a_signed_in_user_reads_and_deletes_his_own_objects_not_the_environment_s(storage: Storage) -> None:
    """An integration reads any object of its environment; a signed-in user's token (every scope but admin) reads and
    deletes his own uploads and reads the files of records he may read (``zida.core.files.access``), not the rest."""
    user = user_token(storage.base, "zhangsan", "DemoPass123!@#")
    theirs = storage.upload("session/integration.jpg")
    refused = storage.post("get-objects-download-info", [{"cloudObjectId": theirs}], token=user).json()[0]
    assert refused["code"] == "STORAGE_EXCEED_AUTHORITY" and refused["cloudObjectId"] == theirs
    kept = storage.post("delete-objects", [{"cloudObjectId": theirs}], token=user).json()[0]
    assert kept["code"] == "STORAGE_EXCEED_AUTHORITY"
    assert storage.post("get-objects-download-info", [{"cloudObjectId": theirs}]).json()[0]["downloadUrl"]
    info = storage.post("get-objects-upload-info", [{"objectId": "session/mine.jpg"}], token=user).json()[0]
    assert storage.put(info, JPEG).status_code == 200
    mine = info["cloudObjectId"]
    answer = storage.post("get-objects-download-info", [{"cloudObjectId": mine}], token=user).json()[0]
    assert "downloadUrl" in answer, answer
    url = answer["downloadUrl"]
    assert httpx.get(url, timeout=30).content == JPEG
    assert storage.post("delete-objects", [{"cloudObjectId": mine}], token=user).json() == [{"cloudObjectId": mine}]
    # Each object not his may cost a scan of the corp's records: a user's call names at most MAX_USER_ITEMS of them.
    many = [{"cloudObjectId": theirs}] * (weda_storage.MAX_USER_ITEMS + 1)
    assert storage.post("get-objects-download-info", many, token=user).json()["code"] == "OBJECT_BATCH_TOO_LARGE"


def test_a_call_over_the_rate_limit_is_retryable(weda_url: str) -> None:
    server = ServerProcess(weda_url, ZIDA_RATE_LIMIT_QPS="1")
    try:
        storage = Storage(server, weda_url)
        body = [{"cloudObjectId": PREFIX + "limited.jpg"}]
        answers = [storage.post("get-objects-download-info", body) for _ in range(3)]
        limited = [a for a in answers if a.status_code != 200]
        assert limited, [a.text for a in answers]
        for answer in limited:  # not a bad parameter: a rate limit, with when to try again
            assert answer.status_code == 429 and answer.json()["code"] == "EXCEED_RATELIMIT"
            assert answer.headers["retry-after"] == "1" and answer.json()["requestId"]
    finally:
        server.stop()
