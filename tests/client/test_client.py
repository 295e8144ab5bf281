"""``zida.client`` against a live Zida: records, every page of a search, approvals, WeDa models, token renewal,
retries of idempotent calls only, and errors of each dialect as ``ApiError``."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from tests.conftest import ServerProcess, fresh_database, load_fixture_bundle
from zida.client import ApiError, App, AsyncClient, Client

DEMO_BUNDLE = Path(__file__).parents[2] / "demo" / "bundle.yaml"
DEMO = App("APP_DEMO00000000000000001", "ST-DEMO-CHANGE-ME")
FLOW = App("APP_FLOW1", "ST-FLOW1-SECRET")
EXPENSE = "FORM-EXPENSE0000000000000001"
TTL = 4  # seconds a DingTalk token lives on this module's server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of its own: the demo bundle and the approvals corp, tokens living ``TTL`` seconds."""
    with fresh_database(tmp_path_factory.mktemp("client")) as url:
        load_fixture_bundle(url, str(DEMO_BUNDLE))
        load_fixture_bundle(url, "corp_flow.yaml")
        proc = ServerProcess(url, ZIDA_TOKEN_TTL_SECONDS=str(TTL))
        yield proc
        proc.stop()


@pytest.fixture
def base(server: ServerProcess) -> str:
    return f"http://{server.endpoint}"


class Counting(httpx.Client):
    """An httpx client that counts the requests it sends, by path."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.sent: list[str] = []

    def send(self, request: httpx.Request, **kwargs: object) -> httpx.Response:  # type: ignore[override]
        self.sent.append(request.url.path)
        return super().send(request, **kwargs)  # type: ignore[arg-type]


def test_records_round_trip_and_a_search_over_every_page(base: str) -> None:
    with Client(base, "dingdemokey0001", "demo-secret-change-me") as zida:
        ids = [
            zida.save_record(
                DEMO, EXPENSE, {"textField_title0001": f"客户端{i}", "numberField_amount01": i}, user_id="wang"
            )
            for i in range(7)
        ]
        record = zida.get_record(DEMO, ids[0], user_id="wang")
        assert record["formData"]["textField_title0001"] == "客户端0"
        zida.update_record(DEMO, ids[0], {"numberField_amount01": 99}, user_id="wang")
        assert zida.get_record(DEMO, ids[0], user_id="wang")["formData"]["numberField_amount01"] == 99
        found = list(
            zida.search_records(
                DEMO,
                EXPENSE,
                user_id="wang",
                conditions=[{"key": "textField_title0001", "value": "客户端", "type": "TEXT", "operator": "like"}],
                page_size=3,
            )
        )
        assert sorted(r["formInstanceId"] for r in found) == sorted(ids)  # three pages of 3, 3 and 1
        zida.delete_record(DEMO, ids[1], user_id="wang")
        with pytest.raises(ApiError) as gone:
            zida.get_record(DEMO, ids[1], user_id="wang")
        assert (gone.value.status, gone.value.code) == (400, "invalidState.form.dataDoesNotExistOrIsDeleted")
        assert gone.value.request_id


def test_an_approval_started_and_agreed(base: str) -> None:
    with Client(base, "flow-all", "flow-secret-all-01") as zida:
        iid = zida.start_process(
            FLOW, "FORM-FLOW-LEAVE", {"numberField_days": 1, "textField_reason": "家事"}, user_id="li"
        )
        [task] = zida.running_tasks(FLOW, iid, user_id="li")
        assert task["actualActionerId"] == "chen"
        zida.execute_task(FLOW, iid, int(task["taskId"]), "AGREE", user_id="chen", remark="同意")
        finished = zida.get_process(FLOW, iid, user_id="li")
        assert (finished["instanceStatus"], finished["approvedResult"]) == ("COMPLETED", "agree")


def test_weda_models_with_weda_tokens(base: str) -> None:
    with Client(base, "AKIDdemoweda0001", "demo-weda-key-change-me", dialect="weda") as zida:
        made = [zida.create_model_record("prod", "expense", {"title": f"微搭{i}", "amount": 10 + i}) for i in range(5)]
        assert zida.get_model_record("prod", "expense", made[0])["title"] == "微搭0"  # type: ignore[index]
        assert zida.get_model_record("prod", "expense", "FINST-NOPE") is None
        listed = list(zida.list_model_records("prod", "expense", where={"title": {"$search": "微搭"}}, page_size=2))
        assert sorted(r["_id"] for r in listed) == sorted(made)
        with pytest.raises(ApiError) as refused:
            zida.create_model_record("prod", "expense", {"nope": 1})
        assert refused.value.status == 200 and refused.value.code == "INVALID_PARAMETER"


def test_the_token_is_cached_renewed_before_it_expires_and_after_the_server_refuses_it(base: str) -> None:
    http = Counting(base_url=base, trust_env=False)
    zida = Client(base, "dingdemokey0001", "demo-secret-change-me", http=http, refresh_before=1)
    iid = zida.save_record(DEMO, EXPENSE, {"textField_title0001": "令牌"}, user_id="wang")
    for _ in range(3):
        zida.get_record(DEMO, iid, user_id="wang")
    assert http.sent.count("/v1.0/oauth2/accessToken") == 1  # cached
    time.sleep(TTL - 1 + 0.2)  # within a second of expiry: renewed before the next call
    zida.get_record(DEMO, iid, user_id="wang")
    assert http.sent.count("/v1.0/oauth2/accessToken") == 2
    # A token the server no longer takes (expired while this client thought it fresh): renewed once, sent again.
    zida._token.value = "not-a-token"  # type: ignore[union-attr]
    assert zida.get_record(DEMO, iid, user_id="wang")["formData"]["textField_title0001"] == "令牌"
    assert http.sent.count("/v1.0/oauth2/accessToken") == 3
    zida.close()


def test_wrong_credentials_and_oapi_errors_are_api_errors(base: str) -> None:
    with Client(base, "dingdemokey0001", "wrong-secret", retries=0) as zida:
        with pytest.raises(ApiError) as bad:
            zida.token()
        assert bad.value.status == 400 and bad.value.code == "invalidClientIdOrSecret"
    with Client(base, "dingdemokey0001", "demo-secret-change-me") as zida:
        with pytest.raises(ApiError) as oapi:
            zida.call("POST", "/topapi/no/such/api", json={})
        assert oapi.value.status == 200 and oapi.value.code == "22"  # oapi: HTTP 200 with errcode
        listed = zida.call("GET", "/admin/v1/credentials")  # the admin API: the token as a Bearer
        assert "dingdemokey0001" in [c["appKey"] for c in listed["credentials"]]
        with pytest.raises(ApiError) as admin:  # the admin API's {"error": {"code", "message"}}, X-Request-Id
            zida.call("GET", "/admin/v1/no/such/route")
        assert (admin.value.status, admin.value.code) == (404, "route.not_found")
        assert "does not exist" in admin.value.message and admin.value.request_id
        with pytest.raises(ApiError) as legacy:  # oapi's /gettoken: errcode, its request id in X-Request-Id
            zida.call("GET", "/gettoken", params={"appkey": "dingdemokey0001", "appsecret": "wrong"})
        assert legacy.value.code == "40096" and legacy.value.request_id
    with Client(base, "AKIDdemoweda0001", "wrong-weda-secret", dialect="weda", retries=0) as weda:
        with pytest.raises(ApiError) as oauth:  # WeDa sign-in's {"error", "error_description"}, X-Request-Id
            weda.token()
        assert (oauth.value.status, oauth.value.code) == (401, "invalid_client")
        assert oauth.value.message and oauth.value.request_id
        assert "wrong-weda-secret" not in f"{oauth.value} {oauth.value!r} {oauth.value.body} {weda._token_plan!r}"


class Flaky(BaseHTTPRequestHandler):
    """Answers 503 (Retry-After: 0) to the first ``failures`` calls after ``seen`` was emptied, then a DingTalk
    success; tokens are always given (``seen`` lists every request's method, ``TOKEN`` for a token request)."""

    failures = 2
    seen: ClassVar[list[str]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        if self.path.startswith("/v1.0/oauth2/"):
            self.seen.append("TOKEN")
            status, body = 200, b'{"accessToken": "t", "expireIn": 7200}'
        elif len([m for m in self.seen if m != "TOKEN"]) < self.failures:
            self.seen.append(self.command)
            status, body = 503, b'{"code": "serviceUnavailable", "message": "busy", "requestid": "r"}'
        else:
            self.seen.append(self.command)
            status, body = 200, b'{"result": "FINST-1", "formInstanceId": "FINST-1"}'
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("retry-after", "0")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[str]:
    """A real HTTP server on a free port that is briefly unavailable (the client under test talks to it)."""
    Flaky.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_idempotent_calls_are_retried_and_writes_are_not(flaky: str) -> None:
    with Client(flaky, "k", "s", backoff=0.01) as zida:
        Flaky.seen = []
        assert zida.get_record(DEMO, "FINST-1", user_id="u")["formInstanceId"] == "FINST-1"
        assert Flaky.seen == ["TOKEN", "GET", "GET", "GET"]  # the token, then two 503s and the answer
        Flaky.seen = []
        assert zida.call("get", "/v1.0/yida/forms/instances/FINST-1")["result"] == "FINST-1"  # any spelling
        assert Flaky.seen == ["GET", "GET", "GET"]
        Flaky.seen = []
        with pytest.raises(ApiError) as busy:
            zida.save_record(DEMO, EXPENSE, {"x": 1}, user_id="u")  # a write: sent once
        assert busy.value.status == 503 and Flaky.seen == ["POST"]  # the token is cached
    with Client(flaky, "k", "s", retries=1, backoff=0.01) as zida:
        Flaky.seen = []
        with pytest.raises(ApiError):
            zida.get_record(DEMO, "FINST-1", user_id="u")  # retries exhausted: the last refusal
        assert Flaky.seen == ["TOKEN", "GET", "GET"]


def test_the_server_s_own_rate_limit_is_waited_out_by_idempotent_calls(tmp_path: Path) -> None:
    # Each dialect says "too many" in its own way (v1.0 HTTP 403, oapi HTTP 200 errcode 90018 or 88/90018), each
    # with Retry-After: an idempotent call waits and goes on; a write is refused at once.
    with fresh_database(tmp_path) as url:
        load_fixture_bundle(url, str(DEMO_BUNDLE))
        proc = ServerProcess(url, ZIDA_RATE_LIMIT_QPS="2", ZIDA_TOKEN_FAILURES_PER_MINUTE="1")
        try:
            with Client(f"http://{proc.endpoint}", "dingdemokey0001", "demo-secret-change-me") as zida:
                record = zida.save_record(DEMO, EXPENSE, {"textField_title0001": "限流"}, user_id="wang")
                reads = [zida.get_record(DEMO, record, user_id="wang")["formData"] for _ in range(5)]
                assert [r["textField_title0001"] for r in reads] == ["限流"] * 5
                get_user = {"userid": "wang"}
                users = [zida.call("POST", "/topapi/v2/user/get", json=get_user, idempotent=True) for _ in range(5)]
                assert [u["result"]["userid"] for u in users] == ["wang"] * 5
                with pytest.raises(ApiError) as limited:
                    for _ in range(3):
                        zida.save_record(DEMO, EXPENSE, {"textField_title0001": "限流"}, user_id="wang")
                assert limited.value.code == "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"
            # A wrong secret, then refused unchecked for a minute (Retry-After: 60): raised at once, not waited out
            # in retries the server would refuse too.
            with Client(f"http://{proc.endpoint}", "dingdemokey0001", "wrong-secret") as wrong:
                with pytest.raises(ApiError) as bad:
                    wrong.token()
                assert bad.value.code == "invalidClientIdOrSecret"
                started = time.monotonic()
                with pytest.raises(ApiError) as refused:
                    wrong.token()
                assert refused.value.code == "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"
                assert time.monotonic() - started < 5
        finally:
            proc.stop()


def test_the_async_client_does_the_same(base: str) -> None:
    async def go() -> None:
        async with AsyncClient(base, "dingdemokey0001", "demo-secret-change-me") as zida:
            saved = await asyncio.gather(
                *(
                    zida.save_record(DEMO, EXPENSE, {"textField_title0001": f"异步{i}"}, user_id="wang")
                    for i in range(5)
                )
            )
            found = [
                r["formInstanceId"]
                async for r in zida.search_records(
                    DEMO,
                    EXPENSE,
                    user_id="wang",
                    conditions=[{"key": "textField_title0001", "value": "异步", "type": "TEXT", "operator": "like"}],
                    page_size=2,
                )
            ]
            assert sorted(found) == sorted(saved)
            with pytest.raises(ApiError) as refused:
                await zida.get_record(App(DEMO.app_type, "wrong"), saved[0], user_id="wang")
            assert refused.value.status in (400, 403)

    asyncio.run(go())


class ACounting(httpx.AsyncClient):
    """An async httpx client that counts the requests it sends, by path."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.sent: list[str] = []

    async def send(self, request: httpx.Request, **kwargs: object) -> httpx.Response:  # type: ignore[override]
        self.sent.append(request.url.path)
        return await super().send(request, **kwargs)  # type: ignore[arg-type]


def test_callers_needing_a_token_at_once_share_one_token_request(base: str) -> None:
    token_path = "/v1.0/oauth2/accessToken"
    http = Counting(base_url=base, trust_env=False)
    with Client(base, "dingdemokey0001", "demo-secret-change-me", http=http) as zida:
        iid = zida.save_record(DEMO, EXPENSE, {"textField_title0001": "并发"}, user_id="wang")
        http.sent.clear()
        zida._token = None

        def in_threads(call: Callable[[], object]) -> list[object]:
            start, results = threading.Barrier(8), list[object]()

            def one() -> None:
                start.wait()
                try:
                    results.append(call())
                except ApiError as error:
                    results.append(error)

            threads = [threading.Thread(target=one) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            return results

        read = in_threads(lambda: zida.get_record(DEMO, iid, user_id="wang")["formData"]["textField_title0001"])
        assert read == ["并发"] * 8 and http.sent.count(token_path) == 1
        # A token the server refuses, seen by eight calls at once: renewed once, each call sent once more.
        assert zida._token is not None
        zida._token.value = "not-a-token"
        read = in_threads(lambda: zida.get_record(DEMO, iid, user_id="wang")["formData"]["textField_title0001"])
        assert read == ["并发"] * 8 and http.sent.count(token_path) == 2
    # A refused token request (slowed by a proxy, so that every caller comes while it is under way): its refusal
    # is every waiting caller's, not asked again by each.
    with proxy(base, delay=0.5) as slow:
        http = Counting(base_url=slow, trust_env=False)
        with Client(slow, "dingdemokey0001", "wrong-secret", http=http) as wrong:
            refused = in_threads(lambda: wrong.get_record(DEMO, iid, user_id="wang"))
            assert {e.code for e in refused} == {"invalidClientIdOrSecret"}  # type: ignore[attr-defined]
            assert http.sent.count(token_path) == 1

    async def tasks() -> None:
        ahttp = ACounting(base_url=base, trust_env=False)
        async with AsyncClient(base, "dingdemokey0001", "demo-secret-change-me", http=ahttp) as azida:
            got = await asyncio.gather(*(azida.get_record(DEMO, iid, user_id="wang") for _ in range(8)))
            assert {r["formData"]["textField_title0001"] for r in got} == {"并发"} and ahttp.sent.count(token_path) == 1
            azida._token.value = "not-a-token"  # type: ignore[union-attr]
            got = await asyncio.gather(*(azida.get_record(DEMO, iid, user_id="wang") for _ in range(8)))
            assert {r["formData"]["textField_title0001"] for r in got} == {"并发"} and ahttp.sent.count(token_path) == 2

    asyncio.run(tasks())


class Proxy(BaseHTTPRequestHandler):
    """A reverse proxy in front of Zida (``upstream``) that passes token requests on (after ``delay`` seconds) and
    answers anything else as a misconfigured proxy may: ``mode`` "html" (a 200 login page) or "empty" (no body)."""

    upstream = ""
    mode = "html"
    delay = 0.0

    def _answer(self) -> None:
        sent = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path.startswith("/v1.0/oauth2/"):
            time.sleep(self.delay)
            answer = httpx.post(self.upstream + self.path, content=sent, headers={"content-type": "application/json"})
            status, kind, body = answer.status_code, answer.headers["content-type"], answer.content
        else:
            status, kind = 200, "text/html"
            body = b"<html><body>Sign in to the proxy</body></html>" if self.mode == "html" else b""
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def proxy(upstream: str, delay: float = 0.0) -> Iterator[str]:
    """A :class:`Proxy` in front of ``upstream`` for the block: its base URL."""
    Proxy.upstream, Proxy.delay, Proxy.mode = upstream, delay, "html"
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_an_answer_that_is_not_the_expected_json_is_an_api_error(base: str) -> None:
    with proxy(base) as through, Client(through, "dingdemokey0001", "demo-secret-change-me") as zida:
        for mode in ("html", "empty"):
            Proxy.mode = mode
            calls: list[Callable[[], object]] = [
                lambda: zida.save_record(DEMO, EXPENSE, {"textField_title0001": "x"}, user_id="wang"),
                lambda: zida.get_record(DEMO, "FINST-1", user_id="wang"),
                lambda: list(zida.search_records(DEMO, EXPENSE, user_id="wang")),
                lambda: zida.running_tasks(DEMO, "PROC-1", user_id="wang"),
            ]
            for call in calls:
                with pytest.raises(ApiError) as bad:
                    call()
                assert (bad.value.status, bad.value.code) == (200, "InvalidResponse")
                assert ("Sign in to the proxy" if mode == "html" else "empty body") in bad.value.message
        assert zida.call("POST", "/anything", json={}) is None  # no body: nothing, for a call that reads none
