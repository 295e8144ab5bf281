"""The real WeDa clients, unmodified, against a live Zida: ``@cloudbase/wx-cloud-client-sdk`` (``generateHTTPClient``
over a client-credential token) and ``@cloudbase/js-sdk`` (username/password sign-in, then data models).

The drivers are in ``js/`` (installed from the npm registry by ``make test``); each runs every operation it knows,
checks the values it gets back and prints one JSON object (``ok``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dialects.weda.conftest import ENV_ID, SECRET, credential_token

JS = Path(__file__).parent / "js"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed (make test needs it)")


def run_node(script: str, env: dict[str, str]) -> Any:
    """Run a driver; its stdout as JSON (it must exit 0)."""
    assert (JS / "node_modules").is_dir(), (
        "run `make test` (it installs the npm clients into tests/conformance/weda/js)"
    )
    done = subprocess.run(
        ["node", script],
        cwd=JS,
        env={**os.environ, "NO_PROXY": "127.0.0.1,localhost", "TENCENTCLOUD": "true", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    return json.loads(done.stdout)


def run_driver(script: str, env: dict[str, str]) -> dict[str, Any]:
    """Run a driver that checks its own results and reports ``{"ok": true, "results": …}``."""
    result: dict[str, Any] = run_node(script, env)
    assert result["ok"] is True
    return result


def started_leave(base_url: str) -> str:
    """A running leave approval of wuser1, its first task wuser2's (started over plain HTTP)."""
    token = credential_token(base_url)
    reply = httpx.post(
        f"{base_url}/weda/workflow/v1/prod/StartProcessWithParams",
        json={
            "ProcessKey": "leave_approval",
            "StartParams": [{"paramCode": "leave", "fieldValueMap": {"reason": "客户端", "days": 1}}],
            "ExtraUserInfo": {"UserId": "wuser1", "Source": 4},
        },
        headers={"authorization": f"Bearer {token}"},
    )
    instance_id: str = reply.json()["Response"]["Data"]["InstanceId"]
    return instance_id


def secret_env(base_url: str) -> dict[str, str]:
    return {"WEDA_DOMAIN": base_url, "WEDA_SECRET_ID": SECRET[0], "WEDA_SECRET_KEY": SECRET[1]}


def test_the_guide_s_koa_example_lists_an_instance_s_approvers(weda_base: str) -> None:
    instance_id = started_leave(weda_base)
    body = run_node(
        "run_koa_example.js", {**secret_env(weda_base), "WEDA_ENV_TYPE": "prod", "WEDA_INSTANCE_ID": instance_id}
    )
    [approver] = body["Response"]["Data"]["ApproverList"]
    assert approver["UserId"] == "wuser2" and approver["TaskStatus"] == 1


def test_the_guide_s_postman_token_script_runs_in_newman(weda_base: str) -> None:
    instance_id = started_leave(weda_base)
    summary = run_driver(
        "run_newman.js",
        {**secret_env(weda_base), "WEDA_ENV_TYPE": "prod", "WEDA_MODEL": "expense", "WEDA_INSTANCE_ID": instance_id},
    )
    bodies = {e["item"]: e["response"]["body"] for e in summary["executions"]}
    assert bodies["DescribeInstanceApproverList"]["Response"]["Data"]["ApproverList"][0]["UserId"] == "wuser2"
    assert "records" in bodies["model list"]["data"]
    # The script's pm.sendRequest for the token counts too: one token for both items (cached until expires_in - 60).
    assert summary["stats"]["requests"]["total"] == 3


def test_wx_cloud_client_sdk_runs_every_model_operation(weda_base: str) -> None:
    result = run_driver(
        "wx_client_sdk.js",
        {
            "WEDA_DOMAIN": weda_base,
            "WEDA_SECRET_ID": SECRET[0],
            "WEDA_SECRET_KEY": SECRET[1],
            "WEDA_MODEL": "expense",
            "WEDA_SQL_TEMPLATE": "expensesOfKind",  # tests/fixtures/corp_weda.yaml
        },
    )
    assert "skipped" not in result["results"]
    steps = ("create", "createMany", "get", "list", "update", "updateMany", "upsert", "delete", "deleteMany")
    for step in (*steps, "runSQLTemplate"):
        assert any(key.startswith(step) for key in result["results"]), step


def test_js_sdk_signs_in_and_uses_models(weda_base: str) -> None:
    result = run_driver(
        "js_sdk.js",
        {
            "WEDA_ENV_ID": ENV_ID,
            "WEDA_DOMAIN": weda_base,
            "WEDA_USERNAME": "zhangsan",
            "WEDA_PASSWORD": "DemoPass123!@#",
            "WEDA_MODEL": "expense",
        },
    )
    steps = result["results"]
    assert steps["signInWithPassword"]["data"]["user"]["id"] == "wuser1"  # sub: the user's userId
    created = steps["get"]["data"]
    assert created["_id"] == steps["create"]["data"]["id"]
    assert created["createBy"] == created["owner"] == "wuser1"  # the signed-in user acts as himself
