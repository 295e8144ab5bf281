"""A database made by the previous release, built from git history: the commit before issue 15's first change
(``69e3406~1``, "Files (issue 14)") is extracted with ``git archive``, and its own ``zida migrate``, ``zida load``
(of its own corp_flow fixture) and ``zida serve`` make the database and write to it over HTTP: records, an
approval whose first step is done and whose second waits, and one that was refused.

Run as a script to build one by hand: ``python -m tests.reliability.old_release sqlite:///tmp/old.db``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import SECRET_KEY, ServerProcess

__all__ = ["OLD_RELEASE", "OldDatabase", "build_old_database", "extract_old_release"]

OLD_RELEASE = "69e3406~1"
ROOT = Path(__file__).resolve().parents[2]
APP = {"appType": "APP_FLOW1", "systemToken": "ST-FLOW1-SECRET"}


@dataclass
class OldDatabase:
    """What the old release wrote, to find again after the upgrade."""

    records: dict[str, str] = field(default_factory=dict)  # formInstanceId -> title
    waiting: str = ""  # an approval whose first task (wang) is done, the second (chen) running
    refused: str = ""  # an approval wang refused (finished)
    revision: str = ""  # the old release's schema revision


def extract_old_release(directory: Path) -> Path:
    """The old release's ``src`` and ``tests/fixtures`` under ``directory`` (needs the git history)."""
    archive = directory / "old.tar"
    with archive.open("wb") as out:
        done = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", OLD_RELEASE, "src", "tests/fixtures"],
            stdout=out,
            stderr=subprocess.PIPE,
        )
    if done.returncode:
        raise RuntimeError(f"git archive {OLD_RELEASE} failed (a shallow clone?): {done.stderr.decode()}")
    with tarfile.open(archive) as tar:
        tar.extractall(directory / "old", filter="data")
    return directory / "old"


def _old(old: Path, *args: str, url: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(old / "src"), "ZIDA_SECRET_KEY": SECRET_KEY}
    done = subprocess.run(
        [sys.executable, "-m", "zida.cli", *args, "--database", url], env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"old zida {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done.stdout


def build_old_database(url: str, directory: Path) -> OldDatabase:
    """Make the database at ``url`` (empty: a new SQLite file or PostgreSQL schema) with the old release."""
    old = extract_old_release(directory)
    probe = subprocess.run(
        [sys.executable, "-c", "import zida; print(zida.__file__)"],
        env={**os.environ, "PYTHONPATH": str(old / "src")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.startswith(str(old)), f"the old release did not shadow the current one: {probe.stdout}"
    _old(old, "migrate", url=url)
    _old(old, "load", str(old / "tests/fixtures/corp_flow.yaml"), url=url)
    written = OldDatabase()
    server = ServerProcess(url, PYTHONPATH=str(old / "src"))
    try:
        with httpx.Client(base_url=f"http://{server.endpoint}", timeout=30) as http:
            token = http.post(
                "/v1.0/oauth2/accessToken", json={"appKey": "flow-all", "appSecret": "flow-secret-all-01"}
            ).json()["accessToken"]
            headers = {"x-acs-dingtalk-access-token": token}

            def post(path: str, body: dict[str, object]) -> dict[str, object]:
                reply = http.post(path, json={**APP, **body}, headers=headers)
                assert reply.status_code == 200, reply.text
                answer: dict[str, object] = reply.json()
                return answer

            for n in range(5):
                title = f"old-record-{n}"
                data = json.dumps({"textField_title": title})
                saved = post(
                    "/v1.0/yida/forms/instances", {"userId": "li", "formUuid": "FORM-FLOW-PLAIN", "formDataJson": data}
                )
                written.records[str(saved["result"])] = title

            def start(title: str) -> str:
                data = json.dumps({"textField_title": title, "numberField_amount": 100})
                body = {"userId": "li", "formUuid": "FORM-FLOW-TWO", "formDataJson": data}
                return str(post("/v1.0/yida/processes/instances/start", body)["result"])

            def execute(instance: str, user: str, result: str) -> None:
                query = {**APP, "userId": user, "processInstanceId": instance}
                tasks = http.get("/v1.0/yida/processes/tasks/getRunningTasks", params=query, headers=headers).json()
                task = next(t for t in tasks["result"] if t["actualActionerId"] == user)
                body = {"userId": user, "processInstanceId": instance, "taskId": task["taskId"]}
                post("/v1.0/yida/tasks/execute", {**body, "outResult": result, "remark": "old"})

            written.waiting = start("old-waiting")
            execute(written.waiting, "wang", "AGREE")
            written.refused = start("old-refused")
            execute(written.refused, "wang", "DISAGREE")
    finally:
        server.stop()
    written.revision = _revision(url)
    return written


def _revision(url: str) -> str:
    from zida.db.migrate import sync_engine

    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar())
    finally:
        engine.dispose()


if __name__ == "__main__":  # pragma: no cover - a by-hand helper
    made = build_old_database(sys.argv[1], Path(tempfile.mkdtemp(prefix="zida-old-")))
    print(json.dumps(made.__dict__, indent=2))
