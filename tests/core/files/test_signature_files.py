"""A DigitalSignatureField whose value is a Zida file id: the file must exist in the corp, and the record's write
marks it attached (it no longer expires; readers of the record may read it) — as an attachment's file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from zida.core.access.members import app_actor
from zida.core.errors import InvalidArgument
from zida.core.files import repository
from zida.core.files.actions import Upload, upload_file
from zida.core.files.models import FileLimits
from zida.core.files.storage import LocalStorage
from zida.core.principals import AppActor
from zida.core.records.actions import save_form_instance, update_form_instance
from zida.db import Database

pytestmark = pytest.mark.anyio


@pytest.fixture
def db(corp_a_db: Database) -> Database:
    """Corp A in a database of this module's own (the files tests' conftest)."""
    return corp_a_db


async def _actor(db: Database) -> AppActor:
    row = await db.fetchrow("SELECT a.id, a.corp_pk FROM app a WHERE a.app_type = :t", {"t": "APP_A1"})
    assert row is not None
    return await app_actor(db, int(row["corp_pk"]), int(row["id"]), "admin1")


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


async def test_a_signature_naming_a_zida_file_attaches_it(db: Database, tmp_path: Path) -> None:
    actor = await _actor(db)
    upload = Upload(name="sign.png", chunks=_chunks(PNG))
    file = await upload_file(
        db, LocalStorage(tmp_path), FileLimits(), corp_pk=actor.corp_pk, uploader="credential:t", upload=upload
    )
    assert file.attached_at is None
    missing = "FILE-" + "0" * 32
    with pytest.raises(InvalidArgument) as refused:
        await save_form_instance(db, actor, "FORM-A1ALL", {"textField_t1": "s", "digitalSignatureField_sg1": missing})
    assert refused.value.reason == "form_data.unknown_file"
    record = await save_form_instance(
        db, actor, "FORM-A1ALL", {"textField_t1": "s", "digitalSignatureField_sg1": file.file_id}
    )
    assert record.data["digitalSignatureField_sg1"] == file.file_id  # stored as given: the core's string
    assert (await repository.find_file(db, file.file_id)).attached_at is not None  # type: ignore[union-attr]
    found = await repository.records_referencing(db, actor.corp_pk, file.file_id, app_pk=actor.app_pk, limit=5)
    assert [r["instance_id"] for r in found] == [record.instance_id]
    # Any other text is a signature as before (HTML, an image URL elsewhere): no file involved.
    await update_form_instance(db, actor, record.instance_id, {"digitalSignatureField_sg1": "<img src=x>"})
