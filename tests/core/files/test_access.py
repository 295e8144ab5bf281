"""Who may read a file: a signed-in user's own token (a WeDa session) reads his uploads and the files of the records
he may read, never the rest of the corp's files (``zida.core.files.access.check_user_may_read``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.files.test_lifecycle import _actor, _chunks, _upload
from zida.core.errors import NotFound, PermissionDenied
from zida.core.files import repository
from zida.core.files.access import check_user_may_read
from zida.core.files.actions import Upload, upload_file
from zida.core.files.models import FileLimits
from zida.core.files.storage import LocalStorage
from zida.core.principals import Principal, Scope
from zida.core.records.actions import save_form_instance
from zida.db import Database

pytestmark = pytest.mark.anyio


@pytest.fixture
def db(corp_a_db: Database) -> Database:
    """Corp A in a database of this module's own (the files tests' conftest)."""
    return corp_a_db


def _session(corp_pk: int, user_id: str) -> Principal:
    return Principal(
        kind="session", corp_pk=corp_pk, corp_id="corpA", scopes=frozenset(Scope), client_id="console", user_id=user_id
    )


async def test_a_signed_in_user_reads_his_uploads_and_his_records_files_only(db: Database, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    admin = await _actor(db)  # admin1, the app's admin
    attached, loose = await _upload(db, storage, admin), await _upload(db, storage, admin)  # by a credential
    record = await save_form_instance(
        db,
        admin,
        "FORM-A1ALL",
        {"textField_t1": "x", "attachmentField_at1": [{"name": "a.pdf", "fileUuid": attached.file_id}]},
    )
    assert record.originator_user_id == "admin1"
    u1 = _session(admin.corp_pk, "u1")  # a member: reads his own records only
    own = await upload_file(
        db,
        storage,
        FileLimits(),
        corp_pk=admin.corp_pk,
        uploader="user:u1",
        upload=Upload("mine.pdf", _chunks(b"%PDF-1.4 u1")),
    )

    async def read(principal: Principal, file_id: str) -> str:
        found = await check_user_may_read(db, principal, await repository.find_file(db, file_id), file_id)
        return found.file_id

    assert await read(u1, own.file_id) == own.file_id
    assert await read(_session(admin.corp_pk, "admin1"), attached.file_id) == attached.file_id  # his record's
    for file_id in (attached.file_id, loose.file_id):  # another's record's file; a loose upload of an integration
        with pytest.raises(PermissionDenied) as refused:
            await read(u1, file_id)
        assert refused.value.reason == "file.not_readable"
    with pytest.raises(PermissionDenied):
        await read(_session(admin.corp_pk, "admin1"), loose.file_id)
    with pytest.raises(NotFound):  # another corp's user: the file does not exist for him
        await read(_session(admin.corp_pk + 1000, "u1"), own.file_id)
