"""Scale-out on PostgreSQL + Redis: three "hosts" — two ``zida serve`` processes on their own ports and one
``zida serve --workers 2`` — on one database and one Redis, as several machines behind a load balancer would run.

Proved here, through plain HTTP as any client calls: a token issued by one host works on the others at once; a
credential revoked (admin API, or ``zida credentials revoke``) and a form changed on one host are seen by the others
within ``ZIDA_CACHE_SYNC_SECONDS`` (0.5 s; the README's bound is 1 s); page N of a search is the same rows whichever
host serves it, whoever served page N-1 (page numbers are the only cursor a client holds; the page-end memory of
``zida.core.records.store.PageCursors`` only speeds a host up and is checked against the form's generation); upserts
with one search condition from every host at once make one record.

PostgreSQL only: SQLite is one host (its file is not shared between machines); the SQLite suite skips this module.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import TEST_DATABASE, ServerProcess, fresh_database
from tests.stores import TEST_REDIS_URL, connect_redis, drop_keys, random_prefix
from tests.test_cli import zida
from zida.db.database import is_postgres

pytestmark = pytest.mark.skipif(
    not is_postgres(TEST_DATABASE), reason="SQLite is one host: scale-out runs on PostgreSQL + Redis"
)

BOUND_SECONDS = 1.0  # README "Production": what another host takes to see a revocation or a form change
PREFIX = random_prefix()
REDIS = {"ZIDA_REDIS_URL": TEST_REDIS_URL, "ZIDA_REDIS_PREFIX": PREFIX}
APP = {"appType": "APP_S1", "systemToken": "ST-S1-SECRET-TOKEN", "userId": "sAdmin"}
FORM = "FORM-S1STOCK"
ADMIN = ("keyS-all", "secret-s-all-0001")
BUNDLE = {
    "corp": {"corpId": "corpScale", "name": "扩展公司"},
    "departments": [{"deptId": 1, "name": "扩展公司"}],
    "users": [{"userId": "sAdmin", "name": "管理员", "departments": [1]}],
    "credentials": [{"appKey": ADMIN[0], "appSecret": ADMIN[1], "scopes": ["*"]}],
    "apps": [
        {
            "appType": APP["appType"],
            "name": "库存",
            "systemToken": APP["systemToken"],
            "admins": ["sAdmin"],
            "forms": [
                {
                    "formUuid": FORM,
                    "title": "库存",
                    "fields": [
                        {"fieldId": "textField_sku", "component": "TextField", "label": "SKU", "searchable": True},
                        {"fieldId": "numberField_qty", "component": "NumberField", "label": "数量"},
                    ],
                }
            ],
        }
    ],
}


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    async def probe() -> None:
        store = await connect_redis(PREFIX)  # skips the module only where nothing listens
        await store.close()

    asyncio.run(probe())
    with fresh_database(tmp_path_factory.mktemp("scale")) as url:
        bundle = tmp_path_factory.mktemp("bundle") / "scale.yaml"
        bundle.write_text(yaml.safe_dump(BUNDLE, allow_unicode=True))
        assert zida("load", str(bundle), database=url).returncode == 0
        yield url
    asyncio.run(drop_keys(PREFIX))


@pytest.fixture(scope="module")
def hosts(url: str) -> Iterator[list[str]]:
    """Three hosts: two single-process servers and one of two workers; a long cache lifetime, so only the shared
    store can explain a change being seen quickly."""
    env = {**REDIS, "ZIDA_CACHE_SECONDS": "600"}
    servers: list[ServerProcess] = []
    try:
        servers.append(ServerProcess(url, **env))
        servers.append(ServerProcess(url, **env))
        servers.append(ServerProcess(url, workers=2, **env))  # one host whose two processes share the port
        yield [f"http://{s.endpoint}" for s in servers]
    finally:
        for s in servers:
            s.stop()


def issue(base: str, credential: tuple[str, str] = ADMIN) -> str:
    response = httpx.post(
        base + "/v1.0/oauth2/accessToken", json={"appKey": credential[0], "appSecret": credential[1]}, timeout=10
    )
    assert response.status_code == 200, response.text
    return str(response.json()["accessToken"])


def yida(method: str, base: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, base + path, headers={"x-acs-dingtalk-access-token": token}, timeout=30, **kwargs)


def admin(method: str, base: str, path: str, token: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, base + path, json=body, headers={"authorization": f"Bearer {token}"}, timeout=30)


def new_credential(base: str, token: str) -> tuple[str, str]:
    created = admin(
        "POST", base, "/admin/v1/credentials", token, {"appKey": "v-" + secrets.token_hex(4), "scopes": ["*"]}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    return body["appKey"], body["appSecret"]


REFUSED = "refused"  # DingTalk's answer to an unknown token: 400 InvalidAuthentication


def forms_status(base: str, token: str) -> int | str:
    """getFormListInApp with ``token``: 200, ``REFUSED`` for an invalid token, else the status."""
    response = yida("GET", base, "/v1.0/yida/forms", token, params={k: APP[k] for k in APP})
    if response.status_code == 400 and response.json().get("code") == "InvalidAuthentication":
        return REFUSED
    return response.status_code


def seconds_until(condition: Callable[[], bool], limit: float = 30.0) -> float:
    """How long until ``condition()`` held (checked every 20 ms); fails after ``limit``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > limit:
            pytest.fail(f"still not true after {limit} s")
        time.sleep(0.02)
    return time.monotonic() - started


def test_a_token_issued_by_one_host_works_on_every_other_at_once(hosts: list[str]) -> None:
    for issuer in hosts:
        token = issue(issuer)
        for other in hosts:
            assert forms_status(other, token) == 200, (issuer, other)


def test_a_credential_revoked_on_one_host_is_refused_by_the_others_within_the_bound(hosts: list[str]) -> None:
    first, second, workers = hosts
    admin_token = issue(first)
    victim = new_credential(first, admin_token)
    token = issue(second, victim)
    for host in hosts:  # every host has checked the token, and caches that it is good
        for _ in range(3):
            assert forms_status(host, token) == 200
    revoked = admin("DELETE", first, f"/admin/v1/credentials/{victim[0]}", admin_token)
    assert revoked.status_code == 200, revoked.text
    assert forms_status(first, token) == REFUSED  # the host that made the change: at once
    took = [
        seconds_until(lambda h=h: all(forms_status(h, token) == REFUSED for _ in range(4))) for h in (second, workers)
    ]
    assert max(took) <= BOUND_SECONDS, took


def test_a_credential_revoked_from_the_command_line_is_refused_within_the_bound(url: str, hosts: list[str]) -> None:
    victim = new_credential(hosts[0], issue(hosts[0]))
    token = issue(hosts[1], victim)
    for host in hosts:
        assert forms_status(host, token) == 200
    result = subprocess.run(
        [sys.executable, "-m", "zida.cli", "credentials", "revoke", "--corp", "corpScale", victim[0]],
        capture_output=True,
        text=True,
        env={**os.environ, "ZIDA_DATABASE_URL": url, **REDIS},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    took = [seconds_until(lambda h=h: all(forms_status(h, token) == REFUSED for _ in range(4))) for h in hosts]
    assert max(took) <= BOUND_SECONDS, took


def test_a_form_changed_on_one_host_is_seen_by_the_others_within_the_bound(hosts: list[str]) -> None:
    first = hosts[0]
    token = issue(first)
    path = f"/v1.0/yida/forms/definitions/{APP['appType']}/{FORM}"
    query = {"systemToken": APP["systemToken"], "userId": APP["userId"]}

    def labels(base: str) -> set[str]:
        response = yida("GET", base, path, token, params=query)
        assert response.status_code == 200, response.text
        return {str(c.get("label")) for c in response.json()["result"]}

    for host in hosts:  # cached everywhere
        assert "数量" in labels(host)
    label = "件数-" + secrets.token_hex(3)
    form = BUNDLE["apps"][0]["forms"][0]  # type: ignore[index]
    fields = [dict(f) for f in form["fields"]]
    fields[1]["label"] = label
    changed = admin(
        "PUT", first, f"/admin/v1/apps/{APP['appType']}/forms/{FORM}", token, {"title": "库存", "fields": fields}
    )
    assert changed.status_code in (200, 201), changed.text
    assert label in labels(first)
    took = [seconds_until(lambda h=h: all(label in labels(h) for _ in range(4))) for h in hosts[1:]]
    assert max(took) <= BOUND_SECONDS, took


def _search(base: str, token: str, sku_prefix: str, page: int) -> list[str]:
    response = yida(
        "POST",
        base,
        "/v1.0/yida/forms/instances/search",
        token,
        json={
            **APP,
            "formUuid": FORM,
            "searchFieldJson": json.dumps({"textField_sku": sku_prefix}),
            "currentPage": page,
            "pageSize": 5,
        },
    )
    assert response.status_code == 200, response.text
    return [str(r["formInstanceId"]) for r in response.json()["data"]]


def test_search_pages_continue_on_any_host(hosts: list[str]) -> None:
    token = issue(hosts[0])
    sku = "P" + secrets.token_hex(3)
    with httpx.Client() as client:
        for n in range(23):
            saved = client.post(
                hosts[n % 3] + "/v1.0/yida/forms/instances",
                json={**APP, "formUuid": FORM, "formDataJson": json.dumps({"textField_sku": f"{sku}-{n:02d}"})},
                headers={"x-acs-dingtalk-access-token": token},
                timeout=30,
            )
            assert saved.status_code == 200, saved.text
    alone = [_search(hosts[0], token, sku, page) for page in range(1, 6)]
    assert [len(p) for p in alone] == [5, 5, 5, 5, 3]
    assert len({i for p in alone for i in p}) == 23
    # Page after page, each from another host than the one before (and in the other order): the same rows.
    for order in (hosts, hosts[::-1]):
        pages = [_search(order[(page - 1) % 3], token, sku, page) for page in range(1, 6)]
        assert pages == alone
    # A host that served the deep pages before a record was added does not continue from stale page ends.
    client_token = token
    added = yida(
        "POST",
        hosts[1],
        "/v1.0/yida/forms/instances",
        client_token,
        json={**APP, "formUuid": FORM, "formDataJson": json.dumps({"textField_sku": f"{sku}-new"})},
    )
    assert added.status_code == 200
    after = [_search(hosts[page % 3], token, sku, page) for page in range(1, 6)]
    assert after[0][0] == added.json()["result"]  # newest first
    assert [i for p in after for i in p] == [added.json()["result"], *[i for p in alone for i in p]][:24]


def test_concurrent_upserts_from_every_host_make_one_record(hosts: list[str]) -> None:
    token = issue(hosts[0])
    for _ in range(3):
        sku = "U" + secrets.token_hex(4)
        condition = json.dumps([{"key": "textField_sku", "value": sku, "type": "TEXT", "operator": "eq"}])
        gate = threading.Barrier(9)

        def upsert(n: int, sku: str = sku, condition: str = condition, gate: threading.Barrier = gate) -> list[str]:
            gate.wait()
            response = yida(
                "POST",
                hosts[n % 3],
                "/v1.0/yida/forms/instances/insertOrUpdate",
                token,
                json={
                    **APP,
                    "formUuid": FORM,
                    "searchCondition": condition,
                    "formDataJson": json.dumps({"textField_sku": sku, "numberField_qty": n}),
                },
            )
            assert response.status_code == 200, response.text
            return list(response.json()["result"])

        with ThreadPoolExecutor(9) as pool:
            results = list(pool.map(upsert, range(9)))
        assert len({r[0] for r in results}) == 1 and all(len(r) == 1 for r in results)
        for host in hosts:
            assert len(_search(host, token, sku, 1)) == 1


def test_the_secret_key_file_is_not_needed_by_other_hosts(tmp_path: Path) -> None:
    """Every host is given the same ZIDA_SECRET_KEY: a PostgreSQL server never makes a key of its own."""
    env = {k: v for k, v in os.environ.items() if k not in ("ZIDA_SECRET_KEY", "ZIDA_SECRET_KEY_FILE")}
    result = subprocess.run(
        [sys.executable, "-m", "zida.cli", "serve", "--port", "1", "--database", TEST_DATABASE],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0 and "ZIDA_SECRET_KEY is required with PostgreSQL" in result.stderr
    assert not (tmp_path / "var").exists()
