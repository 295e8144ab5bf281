"""The files' lifecycle: expiry of unattached uploads, files of deleted records, orphaned bytes, and moving the bytes
from one storage to another.

Policy (README "Files"):

* An upload no record or approval references expires ``ZIDA_FILES_UNATTACHED_HOURS`` (default 24) after it was
  made; ``zida files gc`` removes it (row, audit row, ``file.deleted`` event, bytes). Before removing, gc looks for
  a live record of the file's corp whose values name it as a file (an attachment or image item, a signature: a
  reference written outside the usual path; an id merely written in a text names nothing) and keeps such a file,
  marked attached.
* A file once attached whose records are all deleted: with ``ZIDA_FILES_ON_RECORD_DELETE=keep`` (default) it is
  kept for the records' history (their operation logs name it; app credentials of the corp may still read it);
  with ``remove`` gc removes it once no live record names it.
* Bytes in the storage that no row names (an upload cut off between storing and committing) are removed once
  their id's timestamp is an hour old (an upload in flight is never touched).

``migrate_files`` copies every file whose row names another backend into the target storage, then points its row
there (one statement per file, so an interrupted move resumes where it stopped); the source bytes are removed only
when asked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import orjson

from zida.clock import now_ms
from zida.core.files import repository
from zida.core.files.actions import delete_file
from zida.core.files.models import FILE_ID_PREFIX, StoredFile, files_named
from zida.core.files.repository import FormFields
from zida.core.files.storage import FileStorage
from zida.db import Database
from zida.settings import Settings

__all__ = ["GcReport", "collect_garbage", "files_to_move", "migrate_files"]

ORPHAN_GRACE_MS = 3600 * 1000
_PAGE = 500

Progress = Callable[[int, int], None]


@dataclass
class GcReport:
    """What a gc run found (and, unless it was a dry run, removed): counts and bytes per kind."""

    expired: list[StoredFile] = field(default_factory=list)
    of_deleted_records: list[StoredFile] = field(default_factory=list)
    orphan_keys: list[str] = field(default_factory=list)
    kept_referenced: int = 0

    def lines(self) -> list[str]:
        """The report as lines of text."""
        return [
            f"unattached uploads past their window: {len(self.expired)} ({sum(f.size for f in self.expired):,} bytes)",
            f"files of deleted records: {len(self.of_deleted_records)}"
            f" ({sum(f.size for f in self.of_deleted_records):,} bytes)",
            f"orphaned objects in storage: {len(self.orphan_keys)}",
            f"unattached but referenced (now marked attached): {self.kept_referenced}",
        ]


async def _referenced_ids(db: Database) -> set[tuple[int, str]]:
    """Every (corp, file id) a live record's values name as a file (``files_named``: attachment and image items,
    signatures; a record names its own corp's files only), a walk over the records that hold a file id, page by
    page, each read against its form's fields."""
    found: set[tuple[int, str]] = set()
    fields = FormFields(db)
    last = 0
    text = "CAST(data AS text)" if db.sql.name == "postgresql" else "data"
    while True:
        rows = await db.fetch(
            f"SELECT id, corp_pk, form_pk, form_version, {text} AS data FROM form_instance WHERE id > :last"
            f" AND {text} LIKE :p ORDER BY id LIMIT :n",
            {"last": last, "p": f"%{FILE_ID_PREFIX}%", "n": _PAGE},
        )
        for row in rows:
            schema = await fields.of(int(row["form_pk"]), int(row["form_version"]))
            corp_pk = int(row["corp_pk"])
            found.update((corp_pk, file_id) for file_id in files_named(orjson.loads(row["data"]), schema))
        if len(rows) < _PAGE:
            return found
        last = int(rows[-1]["id"])


async def _all_files(db: Database) -> AsyncIterator[StoredFile]:
    last = ""
    while True:
        rows = await db.fetch(
            "SELECT file_id FROM stored_file WHERE file_id > :last ORDER BY file_id LIMIT :n",
            {"last": last, "n": _PAGE},
        )
        for row in rows:
            file = await repository.find_file(db, row["file_id"])
            if file is not None:
                yield file
        if len(rows) < _PAGE:
            return
        last = rows[-1]["file_id"]


def _id_time(file_id: str) -> int:
    """When a file id was made (0: not a file id, e.g. a dead upload's partial file, idle long enough to list)."""
    if not file_id.startswith(FILE_ID_PREFIX):
        return 0
    try:
        return int(file_id[len(FILE_ID_PREFIX) : len(FILE_ID_PREFIX) + 10], 36)
    except ValueError:
        return 0


async def collect_garbage(
    db: Database, settings: Settings, storages: dict[str, FileStorage], *, dry_run: bool, now: int | None = None
) -> GcReport:
    """Find (and unless ``dry_run`` remove) what the policy says is garbage (module docstring)."""
    now = now_ms() if now is None else now
    window = int(settings.files_unattached_hours * 3600 * 1000)
    remove_deleted = settings.files_on_record_delete.upper() == "REMOVE"
    referenced = await _referenced_ids(db)
    report = GcReport()
    known: set[str] = set()
    async for file in _all_files(db):
        known.add(f"{file.backend}:{file.storage_key}")
        if (file.corp_pk, file.file_id) in referenced:
            if file.attached_at is None:
                report.kept_referenced += 1
                if not dry_run:
                    async with db.transaction() as tx:
                        await repository.mark_attached(tx, [file.pk], now)
            continue
        if file.attached_at is None and file.created_at + window <= now:
            report.expired.append(file)
        elif file.attached_at is not None and remove_deleted:
            report.of_deleted_records.append(file)
    for backend, storage in storages.items():
        async for key in storage.list_keys():
            name = key.rsplit("/", 1)[-1]
            if f"{backend}:{key}" not in known and _id_time(name) + ORPHAN_GRACE_MS <= now:
                report.orphan_keys.append(f"{backend}:{key}")
    if not dry_run:
        await _remove(db, storages, report)
        for item in report.orphan_keys:
            backend, key = item.split(":", 1)
            await storages[backend].delete(key)
    return report


async def _remove(db: Database, storages: dict[str, FileStorage], report: GcReport) -> None:
    """Remove what gc chose, each file unless a record wrote a reference to it since its values were read (a
    server runs beside gc): an expired upload is removed only while still unattached (the write marking it
    attached and this removal take the row's lock in turn), a deleted record's file only while no live record
    names it; a file kept so is counted as referenced and left out of the report's removals."""
    expired: list[StoredFile] = []
    for file in report.expired:
        if await delete_file(db, storages[file.backend], file, actor="zida files gc", unless_attached=True):
            expired.append(file)
        else:
            report.kept_referenced += 1
    of_deleted: list[StoredFile] = []
    for file in report.of_deleted_records:
        if await repository.records_referencing(db, file.corp_pk, file.file_id, app_pk=None, limit=1):
            report.kept_referenced += 1
            continue
        await delete_file(db, storages[file.backend], file, actor="zida files gc")
        of_deleted.append(file)
    report.expired, report.of_deleted_records = expired, of_deleted


async def files_to_move(db: Database, backend: str) -> int:
    """How many files are kept elsewhere than ``backend``."""
    return int(await db.fetchval("SELECT COUNT(*) FROM stored_file WHERE backend <> :b", {"b": backend}))


async def migrate_files(
    db: Database,
    sources: Callable[[str], FileStorage],
    target: FileStorage,
    *,
    delete_source: bool = False,
    progress: Progress | None = None,
) -> int:
    """Copy every file not in ``target``'s backend there and point its row at it; how many moved."""
    total = await files_to_move(db, target.backend)
    moved = 0
    while True:
        rows = await db.fetch(
            "SELECT file_id FROM stored_file WHERE backend <> :b ORDER BY id LIMIT :n",
            {"b": target.backend, "n": _PAGE},
        )
        if not rows:
            return moved
        for row in rows:
            file = await repository.find_file(db, row["file_id"])
            if file is None:
                continue
            source = sources(file.backend)
            await target.write(file.storage_key, source.read(file.storage_key))
            async with db.transaction() as tx:
                await tx.execute(
                    "UPDATE stored_file SET backend = :b WHERE id = :p AND backend = :old",
                    {"b": target.backend, "p": file.pk, "old": file.backend},
                )
            if delete_source:
                await source.delete(file.storage_key)
            moved += 1
            if progress is not None:
                progress(moved, total)
