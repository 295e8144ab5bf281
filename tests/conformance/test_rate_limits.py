"""Rate limits on a live server, in each dialect's words: the official SDK sees 403
``Forbidden.AccessDenied.QpsLimitForAppkeyAndApi``; oapi answers errcode 90018 (88 with ``sub_code`` 90018 under
``/topapi/``); WeDa's data models ``REQUEST_LIMIT_EXCEEDED``. A credential's own limit (admin API, bundle) wins over
the server's, and servers sharing a Redis share one budget.

Windows are whole seconds, so each burst starts just after a second begins; a burst the machine could not send
within that second (a very busy CI box) only checks that calls were refused.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from Tea.exceptions import TeaException

from tests.conformance.sdk import A_ALL, A_READ, APP_A1, Sdk
from tests.conftest import ServerProcess, fresh_database, load_fixture_bundle
from tests.stores import TEST_REDIS_URL, connect_redis, drop_keys

LIMIT = 3


def at_second_start() -> float:
    """Sleep until just after the next whole second; the time then."""
    time.sleep(1 - time.time() % 1 + 0.02)
    return time.time()


def burst(call: Callable[[], bool], n: int) -> tuple[int, bool]:
    """Make ``n`` calls at the start of a second: how many went through, and whether all fell within that second."""
    started = at_second_start()
    allowed = sum(1 for _ in range(n) if call())
    return allowed, time.time() - started < 0.95


@pytest.fixture(scope="module")
def limited(loaded_url: str) -> Iterator[ServerProcess]:
    """A second server on the session database, allowing ``LIMIT`` calls per second and API to each credential."""
    proc = ServerProcess(loaded_url, ZIDA_RATE_LIMIT_QPS=str(LIMIT))
    yield proc
    proc.stop()


def test_the_official_sdk_sees_dingtalk_s_qps_error(limited: ServerProcess, save: Callable[..., str]) -> None:
    iid = save({"textField_t1": "限流"})
    sdk = Sdk(limited.endpoint)
    refused: list[TeaException] = []

    def get() -> bool:
        try:
            sdk.call("get_form_data_by_id", iid, **APP_A1, user_id="admin1")
            return True
        except TeaException as exc:
            refused.append(exc)
            return False

    sdk.token()  # the token call is not part of the burst
    allowed, in_one_second = burst(get, 2 * LIMIT)
    assert allowed == LIMIT or (not in_one_second and refused)
    err = refused[0]
    assert (err.code, err.data["statusCode"]) == ("Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", 403)
    # Another API of the same credential has its own budget.
    sdk.call("search_form_datas", **APP_A1, user_id="admin1", form_uuid="FORM-A1ALL", current_page=1, page_size=1)


def test_http_answers_carry_retry_after_and_oapi_its_errcodes(limited: ServerProcess) -> None:
    base = f"http://{limited.endpoint}"
    with httpx.Client(base_url=base, trust_env=False) as http:
        token = http.post("/v1.0/oauth2/accessToken", json={"appKey": A_ALL[0], "appSecret": A_ALL[1]}).json()[
            "accessToken"
        ]
        answers: list[httpx.Response] = []

        def topapi() -> bool:
            answers.append(http.post(f"/topapi/callback/failrecord/list?access_token={token}", json={}))
            return answers[-1].json()["errcode"] == 0

        allowed, in_one_second = burst(topapi, 2 * LIMIT)
        assert allowed == LIMIT or not in_one_second
        wrapped = answers[-1].json()
        assert answers[-1].status_code == 200  # oapi answers everything with 200
        assert (wrapped["errcode"], wrapped["sub_code"]) == (88, "90018") and wrapped["request_id"]

        def legacy() -> bool:
            answers.append(http.get(f"/call_back/get_call_back?access_token={token}"))
            return answers[-1].json()["errcode"] != 90018

        burst(legacy, 2 * LIMIT)
        assert answers[-1].json()["errcode"] == 90018

        def v1() -> bool:
            answers.append(
                http.get(
                    "/v1.0/yida/forms/instances/FINST-NONE",
                    params=_app_query(),
                    headers={"x-acs-dingtalk-access-token": token},
                )
            )
            return answers[-1].status_code != 403

        burst(v1, 2 * LIMIT)
        assert answers[-1].status_code == 403 and answers[-1].headers["retry-after"] == "1"
        assert answers[-1].json()["code"] == "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"


def _app_query() -> dict[str, str]:
    return {"appType": APP_A1["app_type"], "systemToken": APP_A1["system_token"], "userId": "admin1"}


def test_a_credential_s_own_limit_set_through_the_admin_api_and_dumped(tmp_path: Path) -> None:
    with fresh_database(tmp_path) as url:
        load_fixture_bundle(url, "corp_a.yaml")
        proc = ServerProcess(url)  # the tests' default: no server-wide limit
        try:
            base = f"http://{proc.endpoint}"
            with httpx.Client(base_url=base, trust_env=False) as http:

                def token(credential: tuple[str, str]) -> str:
                    body = {"appKey": credential[0], "appSecret": credential[1]}
                    return str(http.post("/v1.0/oauth2/accessToken", json=body).json()["accessToken"])

                admin = {"authorization": f"Bearer {token(A_ALL)}"}
                changed = http.patch("/admin/v1/credentials/keyA-read", json={"rateLimit": 2}, headers=admin)
                assert changed.status_code == 200 and changed.json()["rateLimit"] == 2
                assert changed.json()["scopes"] == ["records.read"]  # left out: unchanged
                bad = http.patch("/admin/v1/credentials/keyA-read", json={"rateLimit": -1}, headers=admin)
                assert bad.status_code == 400 and bad.json()["error"]["message"].startswith("rateLimit must be")
                reader = {"x-acs-dingtalk-access-token": token(A_READ)}

                def read() -> bool:
                    r = http.get("/v1.0/yida/forms/instances/FINST-NONE", params=_app_query(), headers=reader)
                    return r.status_code != 403

                allowed, in_one_second = burst(read, 5)
                assert allowed == 2 or not in_one_second
                allowed, _ = burst(lambda: http.get("/admin/v1/credentials", headers=admin).status_code == 200, 8)
                assert allowed == 8  # keyA-all keeps the server's default: none
                listed = {
                    c["appKey"]: c for c in http.get("/admin/v1/credentials", headers=admin).json()["credentials"]
                }
                assert listed["keyA-read"]["rateLimit"] == 2 and listed["keyA-all"]["rateLimit"] is None
        finally:
            proc.stop()
        dumped = subprocess.run(
            [sys.executable, "-m", "zida.cli", "dump", "--corp", "corpA", "--format", "json", "--database", url],
            capture_output=True,
            text=True,
            check=True,
        )
        credentials = {c["appKey"]: c for c in json.loads(dumped.stdout)["credentials"]}
        assert credentials["keyA-read"]["rateLimit"] == 2 and "rateLimit" not in credentials["keyA-all"]


def test_weda_data_models_answer_request_limit_exceeded(tmp_path: Path) -> None:
    with fresh_database(tmp_path) as url:
        load_fixture_bundle(url, "corp_weda.yaml")
        proc = ServerProcess(url, ZIDA_RATE_LIMIT_QPS=str(LIMIT))
        try:
            with httpx.Client(base_url=f"http://{proc.endpoint}", trust_env=False) as http:
                token = http.post(
                    "/auth/v1/token/clientCredential",
                    auth=("AKIDwedatest0001", "weda-test-key-0001"),
                    json={"grant_type": "client_credentials"},
                ).json()["access_token"]
                answers: list[dict[str, object]] = []

                def listing() -> bool:
                    r = http.post(
                        "/v1/model/prod/expense/list",
                        json={"pageSize": 1},
                        headers={"authorization": f"Bearer {token}"},
                    )
                    answers.append(r.json())
                    return "data" in answers[-1]

                allowed, in_one_second = burst(listing, 2 * LIMIT)
                assert allowed == LIMIT or not in_one_second
                assert answers[-1]["code"] == "REQUEST_LIMIT_EXCEEDED" and answers[-1]["requestId"]
        finally:
            proc.stop()


@pytest.mark.anyio
async def test_servers_sharing_a_redis_share_one_budget(loaded_url: str) -> None:
    prefix = "zida-test-" + secrets.token_hex(6)
    await (await connect_redis(prefix)).close()  # skips the test only when no Redis listens
    env = {"ZIDA_RATE_LIMIT_QPS": "4", "ZIDA_REDIS_URL": TEST_REDIS_URL, "ZIDA_REDIS_PREFIX": prefix}
    hosts = [ServerProcess(loaded_url, **env), ServerProcess(loaded_url, **env)]
    try:
        clients = [httpx.Client(base_url=f"http://{h.endpoint}", trust_env=False) for h in hosts]
        body = {"appKey": A_ALL[0], "appSecret": A_ALL[1]}
        token = clients[0].post("/v1.0/oauth2/accessToken", json=body).json()["accessToken"]
        headers = {"x-acs-dingtalk-access-token": token}
        sent = iter(range(100))

        def read() -> bool:
            client = clients[next(sent) % 2]  # alternately on each "host"
            r = client.get("/v1.0/yida/forms/instances/FINST-NONE", params=_app_query(), headers=headers)
            return r.status_code != 403

        allowed, in_one_second = burst(read, 10)
        assert allowed == 4 or (not in_one_second and allowed <= 8)  # one budget, not 4 per host
        for client in clients:
            client.close()
    finally:
        for host in hosts:
            host.stop()
        await drop_keys(prefix)
