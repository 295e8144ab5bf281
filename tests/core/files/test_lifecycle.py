"""The files' lifecycle on a fresh database: gc's policy (expired uploads, files of deleted records, orphaned bytes),
attachment through the records core, and ``zida files gc`` / ``zida files migrate`` as an operator runs them."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import SECRET_KEY, fresh_database, load_fixture_bundle, opened
from tests.core.files.s3 import MotoServer
from tests.core.workflow.test_statement_counts import CountingDatabase
from zida.clock import now_ms
from zida.core.access.members import app_actor
from zida.core.apps.queries import get_form
from zida.core.errors import InvalidArgument, ZidaError
from zida.core.files import repository
from zida.core.files.actions import Upload, delete_file, upload_file
from zida.core.files.lifecycle import collect_garbage
from zida.core.files.models import FileLimits, StoredFile
from zida.core.files.storage import LocalStorage
from zida.core.principals import AppActor
from zida.core.records import changes as record_changes
from zida.core.records.actions import delete_form_instance, save_form_instance
from zida.core.records.changes import attach_referenced, checked_values
from zida.core.workflow.actions import start_instance
from zida.core.workflow.queries import forecast_instance
from zida.db import Database
from zida.settings import Settings

pytestmark = pytest.mark.anyio

HOUR = 3600 * 1000


@pytest.fixture(scope="module")
def fresh_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(tmp_path_factory.mktemp("lifecycle")) as url:
        load_fixture_bundle(url, "corp_a.yaml")
        load_fixture_bundle(url, "corp_files.yaml")
        yield url


@pytest.fixture
async def fresh(fresh_url: str) -> AsyncIterator[Database]:
    async with opened(fresh_url) as db:
        await db.execute("DELETE FROM form_instance")
        await db.execute("DELETE FROM stored_file")
        yield db


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _actor(db: Database, user: str = "admin1", app_type: str = "APP_A1") -> AppActor:
    row = await db.fetchrow("SELECT a.id, a.corp_pk FROM app a WHERE a.app_type = :t", {"t": app_type})
    assert row is not None
    return await app_actor(db, int(row["corp_pk"]), int(row["id"]), user)


async def _upload(db: Database, storage: LocalStorage, actor: AppActor, data: bytes = b"%PDF-1.4 x") -> StoredFile:
    upload = Upload(name="a.pdf", chunks=_chunks(data))
    return await upload_file(db, storage, FileLimits(), corp_pk=actor.corp_pk, uploader="credential:t", upload=upload)


def _settings(url: str, policy: str = "KEEP") -> Settings:
    return Settings(database_url=url, files_unattached_hours=24.0, files_on_record_delete=policy)


async def test_gc_follows_the_policy(fresh: Database, fresh_url: str, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    actor = await _actor(fresh)
    unattached = await _upload(fresh, storage, actor)
    kept = await _upload(fresh, storage, actor)
    of_deleted = await _upload(fresh, storage, actor)
    await save_form_instance(
        fresh, actor, "FORM-A1ALL", {"textField_t1": "k", "attachmentField_at1": [{"fileUuid": kept.file_id}]}
    )
    gone = await save_form_instance(
        fresh, actor, "FORM-A1ALL", {"textField_t1": "d", "imageField_im1": [{"fileUuid": of_deleted.file_id}]}
    )
    await delete_form_instance(fresh, actor, gone.instance_id)
    orphan_key = f"c{actor.corp_pk}/FILE-0000000001{'A' * 22}"  # bytes no row names, from long ago
    await storage.write(orphan_key, _chunks(b"lost"))
    # no row either, but just made: an upload in flight (a key next to a real one: its last letter changed)
    fresh_orphan = f"c{actor.corp_pk}/{unattached.file_id[:-1]}{'Y' if unattached.file_id.endswith('Z') else 'Z'}"
    await storage.write(fresh_orphan, _chunks(b"in flight"))

    # Within the window nothing of the uploads is garbage.
    early = await collect_garbage(fresh, _settings(fresh_url), {"local": storage}, dry_run=True)
    assert (early.expired, early.of_deleted_records, early.orphan_keys) == ([], [], [f"local:{orphan_key}"])

    later = now_ms() + 25 * HOUR
    report = await collect_garbage(fresh, _settings(fresh_url), {"local": storage}, dry_run=True, now=later)
    assert [f.file_id for f in report.expired] == [unattached.file_id]
    assert report.of_deleted_records == []  # keep: kept for the deleted record's history
    assert sorted(report.orphan_keys) == sorted([f"local:{orphan_key}", f"local:{fresh_orphan}"])
    assert await repository.find_file(fresh, unattached.file_id) is not None  # a dry run removes nothing

    report = await collect_garbage(fresh, _settings(fresh_url, "REMOVE"), {"local": storage}, dry_run=False, now=later)
    assert [f.file_id for f in report.of_deleted_records] == [of_deleted.file_id]
    for file in (unattached, of_deleted):
        assert await repository.find_file(fresh, file.file_id) is None
        assert not (tmp_path / file.storage_key).exists()
    assert await repository.find_file(fresh, kept.file_id) is not None
    assert (tmp_path / kept.storage_key).exists()
    assert not (tmp_path / orphan_key).exists()
    audit = await fresh.fetch("SELECT object_id FROM audit_log WHERE object_kind = 'file' AND action = 'deleted'")
    assert {r["object_id"] for r in audit} >= {unattached.file_id, of_deleted.file_id}


async def test_gc_counts_attachment_items_of_the_file_s_own_corp_only(
    fresh: Database, fresh_url: str, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path)
    actor, li = await _actor(fresh), await _actor(fresh, "li", "APP_FILES")
    mentioned, written, foreign = [await _upload(fresh, storage, actor) for _ in range(3)]
    # A text that holds an id names no file; an attachment item written outside the usual path (not completed,
    # not marked) does; another corp's record naming this corp's file names nothing of it.
    await save_form_instance(fresh, actor, "FORM-A1ALL", {"textField_t1": f"see {mentioned.file_id}"})
    kept = await save_form_instance(fresh, actor, "FORM-A1ALL", {"textField_t1": "kept"})
    claim = await start_instance(fresh, li, "FORM-FILES-CLAIM", {"textField_title": f"{foreign.file_id}"})
    for iid, field, file in (
        (kept.instance_id, "attachmentField_at1", written),
        (claim.record.instance_id, "attachmentField_invoice", foreign),
    ):
        item = orjson.dumps({field: [{"name": "a.pdf", "fileUuid": file.file_id}]}).decode()
        merge = "data || CAST(:item AS jsonb)" if fresh.sql.name == "postgresql" else "json_patch(data, :item)"
        await fresh.execute(f"UPDATE form_instance SET data = {merge} WHERE instance_id = :i", {"item": item, "i": iid})
    later = now_ms() + 25 * HOUR
    report = await collect_garbage(fresh, _settings(fresh_url), {"local": storage}, dry_run=True, now=later)
    assert sorted(f.file_id for f in report.expired) == sorted([mentioned.file_id, foreign.file_id])
    assert report.kept_referenced == 1  # written: its record names it
    # Nor does a text mention let a user read the file through a record of hers (get_open_url's check).
    assert await repository.records_referencing(fresh, actor.corp_pk, mentioned.file_id, app_pk=None, limit=5) == []
    named = await repository.records_referencing(fresh, actor.corp_pk, written.file_id, app_pk=None, limit=5)
    assert [r["instance_id"] for r in named] == [kept.instance_id]


async def test_attaching_marks_the_file_and_a_failed_save_marks_nothing(fresh: Database, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    actor = await _actor(fresh)
    file = await _upload(fresh, storage, actor)
    with pytest.raises(InvalidArgument):  # a required field is missing: the whole save is refused
        await save_form_instance(fresh, actor, "FORM-A1ALL", {"attachmentField_at1": [{"fileUuid": file.file_id}]})
    assert (await repository.find_file(fresh, file.file_id)).attached_at is None  # type: ignore[union-attr]
    record = await save_form_instance(
        fresh,
        actor,
        "FORM-A1ALL",
        {"textField_t1": "ok", "attachmentField_at1": [{"name": "合同.pdf", "fileUuid": file.file_id}]},
    )
    stored = record.data["attachmentField_at1"][0]
    assert (stored["name"], stored["fileUuid"], stored["size"], stored["ext"]) == (
        "合同.pdf",
        file.file_id,
        file.size,
        "pdf",
    )
    assert (await repository.find_file(fresh, file.file_id)).attached_at is not None  # type: ignore[union-attr]


async def test_a_weda_storage_download_url_names_its_file(fresh: Database, tmp_path: Path) -> None:
    # get-objects-download-info hands out /v1/storages/objects/download?file=…: put in a field, it is the file.
    actor = await _actor(fresh)
    file = await _upload(fresh, LocalStorage(tmp_path), actor)
    url = f"https://zida.example/v1/storages/objects/download?file={file.file_id}&expires=1&sig=x"
    record = await save_form_instance(
        fresh, actor, "FORM-A1ALL", {"textField_t1": "weda", "attachmentField_at1": [{"name": "a.pdf", "url": url}]}
    )
    assert record.data["attachmentField_at1"][0]["fileUuid"] == file.file_id
    assert (await repository.find_file(fresh, file.file_id)).attached_at is not None  # type: ignore[union-attr]


async def test_a_weda_upload_is_named_by_its_cloud_object_id_or_its_upload_url(fresh: Database, tmp_path: Path) -> None:
    # A WeDa client uploads with get-objects-upload-info + PUT and keeps what that returned: the cloudObjectId or
    # the upload's downloadUrl. Either, in a field, is the file: completed and attached (gc keeps it).
    actor = await _actor(fresh)
    upload = Upload(name="a.pdf", chunks=_chunks(b"%PDF-1.4 w"), object_path="claims/a.pdf")
    file = await upload_file(
        fresh, LocalStorage(tmp_path), FileLimits(), corp_pk=actor.corp_pk, uploader="weda-upload:x", upload=upload
    )
    cloud = f"cloud://{await repository.environment_id(fresh, actor.corp_pk)}.zida/claims/a.pdf"

    def upload_url(path: str) -> str:  # as get-objects-upload-info hands it out (zida.dialects.weda.storage)
        slot = base64.urlsafe_b64encode(orjson.dumps({"c": actor.corp_pk, "o": path, "e": 1, "n": "n"}))
        return f"https://zida.example/v1/storages/objects/download?slot={slot.decode().rstrip('=')}&sig=x"

    elsewhere = "cloud://another-env.zida/claims/a.pdf"  # another environment's object: a link, kept as sent
    values = [
        {"url": cloud},
        {"name": "b.pdf", "fileUuid": cloud},
        {"downloadUrl": upload_url("claims/a.pdf")},
        {"url": elsewhere},
    ]
    record = await save_form_instance(
        fresh, actor, "FORM-A1ALL", {"textField_t1": "weda", "attachmentField_at1": values}
    )
    stored = record.data["attachmentField_at1"]
    assert [item.get("fileUuid") for item in stored] == [file.file_id, file.file_id, file.file_id, None]
    assert stored[1]["name"] == "b.pdf" and stored[0]["downloadUrl"].startswith("/ossFileHandle?fileName=FILE-")
    assert stored[3] == {"url": elsewhere}
    assert (await repository.find_file(fresh, file.file_id)).attached_at is not None  # type: ignore[union-attr]
    for missing in (cloud.replace("a.pdf", "nope.pdf"), upload_url("claims/nope.pdf")):
        with pytest.raises(InvalidArgument, match="cloudObjectId or upload URL"):
            await save_form_instance(
                fresh, actor, "FORM-A1ALL", {"textField_t1": "x", "attachmentField_at1": [{"url": missing}]}
            )


async def test_an_approval_attaches_its_files_when_it_starts_and_a_forecast_attaches_none(
    fresh: Database, tmp_path: Path
) -> None:
    li = await _actor(fresh, "li", "APP_FILES")
    file = await _upload(fresh, LocalStorage(tmp_path), li)
    values = {"textField_title": "报销", "attachmentField_invoice": [{"name": "发票.pdf", "fileUuid": file.file_id}]}
    steps = (await forecast_instance(fresh, li, "FORM-FILES-CLAIM", values))[1]
    assert steps  # the forecast read the values, files included …
    assert (await repository.find_file(fresh, file.file_id)).attached_at is None  # type: ignore[union-attr]
    inst = await start_instance(fresh, li, "FORM-FILES-CLAIM", values)  # … the start attaches them, in its write
    assert inst.record.data["attachmentField_invoice"][0]["size"] == file.size
    assert (await repository.find_file(fresh, file.file_id)).attached_at is not None  # type: ignore[union-attr]


async def test_an_approval_start_refuses_a_file_gc_removed_after_it_was_checked(
    fresh: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a start was one statement that attached what it could: with the file removed by gc between the
    start's check and its write, the instance was written naming a file that no longer existed."""
    li = await _actor(fresh, "li", "APP_FILES")
    storage = LocalStorage(tmp_path)
    file = await _upload(fresh, storage, li)
    values = {"textField_title": "报销", "attachmentField_invoice": [{"name": "发票.pdf", "fileUuid": file.file_id}]}
    checked = record_changes.prepare_record

    async def gc_runs_after_the_check(*args: Any, **kwargs: Any) -> Any:
        prepared = await checked(*args, **kwargs)
        await delete_file(fresh, storage, file, actor="zida files gc")  # gc, right after the start's check
        return prepared

    monkeypatch.setattr(record_changes, "prepare_record", gc_runs_after_the_check)
    before = await fresh.fetchval("SELECT COUNT(*) FROM process_instance")
    with pytest.raises(ZidaError) as err:
        await start_instance(fresh, li, "FORM-FILES-CLAIM", values)
    assert err.value.reason == "form_data.unknown_file"
    assert await fresh.fetchval("SELECT COUNT(*) FROM process_instance") == before  # nothing written


async def test_a_record_without_zida_files_costs_no_file_statement(fresh: Database, tmp_path: Path) -> None:
    actor = await _actor(fresh)
    counted = CountingDatabase(fresh)
    plain = {"textField_t1": "plain", "attachmentField_at1": [{"downloadUrl": "https://x/y", "name": "y"}]}
    with counted.counting() as log:
        await save_form_instance(counted, actor, "FORM-A1ALL", plain)  # type: ignore[arg-type]
    assert log.statements and not any("stored_file" in q for q in log.statements)
    file = await _upload(fresh, LocalStorage(tmp_path), actor)
    with counted.counting() as log:
        await save_form_instance(
            counted, actor, "FORM-A1ALL", {"textField_t1": "f", "imageField_im1": [{"fileUuid": file.file_id}]}
        )  # type: ignore[arg-type]
    assert sum("stored_file" in q for q in log.statements) == 2  # the files read, then marked attached


def _zida(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zida.cli", "files", *args, "--database", url],
        env={**os.environ, "ZIDA_SECRET_KEY": SECRET_KEY, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_the_commands(fresh: Database, fresh_url: str, tmp_path: Path, moto_server: MotoServer) -> None:
    storage = LocalStorage(tmp_path / "files")
    actor = await _actor(fresh)
    files = [await _upload(fresh, storage, actor, b"%PDF-1.4 " + bytes([i]) * 1000) for i in range(3)]
    local = {"ZIDA_FILES_URL": f"file://{tmp_path / 'files'}"}
    gc = _zida(fresh_url, "gc", "--dry-run", **local)
    assert gc.returncode == 0, gc.stderr
    assert "unattached uploads past their window: 0" in gc.stdout and "dry run" in gc.stdout

    bucket = moto_server.new_bucket()
    s3 = moto_server.env(bucket, "moved")
    moved = _zida(fresh_url, "migrate", "--to", f"s3://{bucket}/moved", "--delete-source", **{**s3, **local})
    assert moved.returncode == 0, moved.stderr
    assert "moved 3 files" in moved.stdout and "files" in moved.stderr  # the progress bar
    client = moto_server.client()
    for file in files:
        body = client.get_object(Bucket=bucket, Key=f"moved/{file.storage_key}")["Body"].read()
        assert body == b"%PDF-1.4 " + bytes([files.index(file)]) * 1000
        row = await repository.find_file(fresh, file.file_id)
        assert row is not None and row.backend == "s3"
        assert not (tmp_path / "files" / file.storage_key).exists()
    again = _zida(fresh_url, "migrate", "--to", f"s3://{bucket}/moved", **{**s3, **local})
    assert "moved 0 files" in again.stdout  # resumable: what moved stays moved
    assert _zida(fresh_url, "migrate", "--to", "/tmp/x").returncode != 0


class _SavingOnList(LocalStorage):
    """A real directory whose listing (gc lists the storage after it chose what to remove, before removing it)
    first lets a client's record write attach a file: the interleaving a gc running beside a live server meets."""

    def __init__(self, root: Path, write: Callable[[], Awaitable[object]]) -> None:
        super().__init__(root)
        self.write_record = write

    async def list_keys(self) -> AsyncIterator[str]:
        await self.write_record()
        async for key in super().list_keys():
            yield key


async def test_gc_never_removes_a_file_a_record_attached_while_it_ran(
    fresh: Database, fresh_url: str, tmp_path: Path
) -> None:
    actor = await _actor(fresh)
    file = await _upload(fresh, LocalStorage(tmp_path), actor)
    values = {"textField_t1": "late", "attachmentField_at1": [{"fileUuid": file.file_id}]}
    storage = _SavingOnList(tmp_path, lambda: save_form_instance(fresh, actor, "FORM-A1ALL", values))
    later = now_ms() + 25 * HOUR  # the upload is past its window when gc starts …
    report = await collect_garbage(fresh, _settings(fresh_url), {"local": storage}, dry_run=False, now=later)
    # … but a record attached it before gc removed anything: the file, its row and its bytes stay.
    kept = await repository.find_file(fresh, file.file_id)
    assert kept is not None and kept.attached_at is not None
    assert (tmp_path / file.storage_key).exists()
    assert report.expired == [] and report.kept_referenced == 1


async def test_a_record_write_refuses_a_file_gc_removed_after_it_was_checked(fresh: Database, tmp_path: Path) -> None:
    # The other order: the write checked the file, gc removed it, then the write marks it attached in its
    # transaction: the write fails rather than keep a record naming a file that no longer exists.
    actor = await _actor(fresh)
    storage = LocalStorage(tmp_path)
    file = await _upload(fresh, storage, actor)
    values = {"textField_t1": "x", "attachmentField_at1": [{"fileUuid": file.file_id}]}
    _, refs = await checked_values(fresh, actor.corp_pk, await get_form(fresh, actor, "FORM-A1ALL"), values)
    assert refs.attaching == {file.pk}
    await delete_file(fresh, storage, file, actor="zida files gc")
    with pytest.raises(ZidaError) as err:
        async with fresh.transaction() as tx:
            await attach_referenced(tx, [refs])
    assert err.value.reason == "form_data.unknown_file"


_DYING_UPLOAD = """
import asyncio, os, sys
from pathlib import Path
from zida.core.files.storage import LocalStorage

async def chunks():
    yield b"x" * 1000
    os._exit(9)  # the server is killed mid-upload

asyncio.run(LocalStorage(Path(sys.argv[1])).write(sys.argv[2], chunks()))
"""


def _die_mid_upload(root: Path) -> int:
    key = f"c1/FILE-0000000001{'A' * 22}"
    return subprocess.run([sys.executable, "-c", _DYING_UPLOAD, str(root), key], timeout=60).returncode


async def test_gc_removes_the_partial_file_of_an_upload_whose_server_was_killed(
    fresh: Database, fresh_url: str, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path)
    for _ in range(2):
        assert _die_mid_upload(tmp_path) == 9
    partials = sorted((tmp_path / ".partial").iterdir())
    assert len(partials) == 2
    old = now_ms() / 1000 - 2 * 3600
    os.utime(partials[0], (old, old))  # idle for two hours: its upload is dead; the other may still be writing
    report = await collect_garbage(fresh, _settings(fresh_url), {"local": storage}, dry_run=False)
    assert report.orphan_keys == [f"local:.partial/{partials[0].name}"]
    assert not partials[0].exists() and partials[1].exists()
