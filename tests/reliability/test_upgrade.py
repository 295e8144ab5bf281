"""Upgrade: a database the previous release made and wrote to (``tests.reliability.old_release``, built from git
history) is migrated forward by the current ``zida migrate`` and served by the current server, driven with the
official SDK: the old records read back as written, the old approval waiting at its second step finishes, the
refused one stays refused, new records and approvals work, and the workflow's rules hold — on SQLite and on
PostgreSQL."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conformance.sdk import Sdk
from tests.conftest import SECRET_KEY, ServerProcess
from tests.reliability.conftest import PG_URL, kinds, workflow_problems
from tests.reliability.old_release import build_old_database
from zida.db.migrate import sync_engine

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

FLOW_ALL = ("flow-all", "flow-secret-all-01")
APP = {"app_type": "APP_FLOW1", "system_token": "ST-FLOW1-SECRET"}


@contextmanager
def empty_database(kind: str, directory: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a new schema on the shared PostgreSQL (dropped after)."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'old.db'}"
        return
    schema = "zu_" + secrets.token_hex(6)
    engine = sync_engine(PG_URL)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield PG_URL + ("&" if "?" in PG_URL else "?") + f"search_path={schema}"
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        engine.dispose()


def _current_migrate(url: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "zida.cli", "migrate", "--database", url],
        env={**os.environ, "ZIDA_SECRET_KEY": SECRET_KEY},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.mark.parametrize("kind", kinds())
def test_previous_release_database_migrates_and_serves(kind: str, tmp_path: Path) -> None:
    with empty_database(kind, tmp_path) as url:
        old = build_old_database(url, tmp_path)
        _current_migrate(url)
        with sync_engine(url).connect() as conn:
            revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        assert revision != old.revision, "the current release has migrations past the previous one"
        assert workflow_problems(url) == []
        server = ServerProcess(url)
        try:
            sdk = Sdk(server.endpoint)
            token = sdk.token(FLOW_ALL)

            def call(api: str, *path: str, user: str = "li", **fields: object) -> object:
                return sdk.call(api, *path, token=token, **APP, user_id=user, **fields)

            # The old records read back as they were written, one by one and through a search.
            for record_id, title in old.records.items():
                body = call("get_form_data_by_id", record_id).body  # type: ignore[attr-defined]
                assert body.form_data["textField_title"] == title
            found = call("search_form_datas", form_uuid="FORM-FLOW-PLAIN", page_size=100, current_page=1).body  # type: ignore[attr-defined]
            assert {r.form_instance_id for r in found.data} >= set(old.records)
            # The old approval waits for chen, who finishes it; the refused one is finished and stays so.
            running = call("get_running_tasks", user="chen", process_instance_id=old.waiting).body.result  # type: ignore[attr-defined]
            assert [t.actual_actioner_id for t in running] == ["chen"]
            call(
                "execute_task",
                user="chen",
                process_instance_id=old.waiting,
                task_id=int(running[0].task_id),
                out_result="AGREE",
                remark="after the upgrade",
            )
            done = call("get_instance_by_id", old.waiting, user="adm").body  # type: ignore[attr-defined]
            assert (done.instance_status, done.approved_result) == ("COMPLETED", "agree")
            refused = call("get_instance_by_id", old.refused, user="adm").body  # type: ignore[attr-defined]
            assert (refused.instance_status, refused.approved_result) == ("COMPLETED", "disagree")
            # New writes beside the old ones.
            new = call(
                "save_form_data", form_uuid="FORM-FLOW-PLAIN", form_data_json=json.dumps({"textField_title": "new"})
            ).body.result  # type: ignore[attr-defined]
            assert new.startswith("FINST-") and new not in old.records
            started = call(
                "start_instance",
                form_uuid="FORM-FLOW-TWO",
                form_data_json=json.dumps({"textField_title": "new-approval", "numberField_amount": 1}),
            ).body.result  # type: ignore[attr-defined]
            running = call("get_running_tasks", user="wang", process_instance_id=started).body.result  # type: ignore[attr-defined]
            assert [t.actual_actioner_id for t in running] == ["wang"]
        finally:
            server.stop()
        assert workflow_problems(url) == []
