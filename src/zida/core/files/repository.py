"""SQL for stored files (their writes are the actions of ``zida.core.files.actions``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from zida.core.files.models import StoredFile
from zida.db import Connection, Row

__all__ = [
    "delete_file_row",
    "environment_id",
    "find_by_object_path",
    "find_by_object_paths",
    "find_file",
    "find_files",
    "insert_file",
    "mark_attached",
    "records_referencing",
    "used_bytes",
]

_COLUMNS = (
    "id, corp_pk, file_id, name, ext, content_type, size, sha256, backend, storage_key, uploader, object_path, state,"
    " created_at, attached_at"
)


def _file(row: Row) -> StoredFile:
    return StoredFile(
        pk=int(row["id"]),
        corp_pk=int(row["corp_pk"]),
        file_id=row["file_id"],
        name=row["name"],
        ext=row["ext"],
        content_type=row["content_type"],
        size=int(row["size"]),
        sha256=row["sha256"],
        backend=row["backend"],
        storage_key=row["storage_key"],
        uploader=row["uploader"],
        object_path=row["object_path"],
        state=row["state"],
        created_at=int(row["created_at"]),
        attached_at=None if row["attached_at"] is None else int(row["attached_at"]),
    )


async def find_file(conn: Connection, file_id: str) -> StoredFile | None:
    """A file by its id, whatever its corp (callers check the corp)."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM stored_file WHERE file_id = :f", {"f": file_id})
    return None if row is None else _file(row)


async def find_files(conn: Connection, corp_pk: int, file_ids: Iterable[str]) -> dict[str, StoredFile]:
    """The corp's files among ``file_ids`` (one query)."""
    return await _files_by(conn, corp_pk, "file_id", file_ids)


async def _files_by(conn: Connection, corp_pk: int, column: str, values: Iterable[str]) -> dict[str, StoredFile]:
    wanted = sorted(set(values))
    if not wanted:
        return {}
    names = {f"v{i}": v for i, v in enumerate(wanted)}
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM stored_file WHERE corp_pk = :c AND {column} IN ({', '.join(':' + n for n in names)})",
        {"c": corp_pk, **names},
    )
    return {r[column]: _file(r) for r in rows}


async def find_by_object_path(conn: Connection, corp_pk: int, object_path: str) -> StoredFile | None:
    """The corp's file uploaded under a WeDa object path."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM stored_file WHERE corp_pk = :c AND object_path = :p", {"c": corp_pk, "p": object_path}
    )
    return None if row is None else _file(row)


async def find_by_object_paths(conn: Connection, corp_pk: int, object_paths: Iterable[str]) -> dict[str, StoredFile]:
    """The corp's files uploaded under these WeDa object paths, by path (one query)."""
    return await _files_by(conn, corp_pk, "object_path", object_paths)


async def used_bytes(conn: Connection, corp_pk: int) -> int:
    """Bytes the corp's files take."""
    return int(await conn.fetchval("SELECT COALESCE(SUM(size), 0) FROM stored_file WHERE corp_pk = :c", {"c": corp_pk}))


async def insert_file(conn: Connection, values: dict[str, Any]) -> int:
    """Insert a file row; its primary key."""
    return int(
        await conn.fetchval(
            "INSERT INTO stored_file (corp_pk, file_id, name, ext, content_type, size, sha256, backend, storage_key,"
            " uploader, object_path, state, created_at, attached_at) VALUES (:corp_pk, :file_id, :name, :ext,"
            " :content_type, :size, :sha256, :backend, :storage_key, :uploader, :object_path, :state, :created_at,"
            " NULL) RETURNING id",
            values,
        )
    )


async def mark_attached(conn: Connection, file_pks: Iterable[int], at: int) -> None:
    """Record that these files are referenced by a record (the first time only)."""
    pks = sorted(set(file_pks))
    if not pks:
        return
    names = {f"p{i}": pk for i, pk in enumerate(pks)}
    await conn.execute(
        "UPDATE stored_file SET attached_at = :at WHERE attached_at IS NULL AND state = 'stored'"
        f" AND id IN ({', '.join(':' + n for n in names)})",
        {"at": at, **names},
    )


async def records_referencing(
    conn: Connection, corp_pk: int, file_id: str, *, app_pk: int | None, limit: int
) -> list[Row]:
    """Live records of the corp (of one app, when given) with an attachment or image item of the file (its
    ``fileUuid``; a mention in a text is no reference): ``instance_id``, ``app_pk``, ``originator_user_id``,
    ``process_instance_id``. A scan of the values: used by the rare checks that need it (a temporary URL for a
    user), never on the hot path."""
    where = "corp_pk = :c" + (" AND app_pk = :a" if app_pk is not None else "")
    if conn.sql.name == "postgresql":
        item = "jsonb_path_exists(data, '$.** ? (@.fileUuid == $f)', jsonb_build_object('f', CAST(:f AS text)))"
        text = "CAST(data AS text)"
    else:
        item = "EXISTS (SELECT 1 FROM json_tree(form_instance.data) t WHERE t.key = 'fileUuid' AND t.value = :f)"
        text = "data"
    return await conn.fetch(
        f"SELECT instance_id, app_pk, originator_user_id, process_instance_id FROM form_instance WHERE {where}"
        f" AND {text} LIKE :pattern AND {item} LIMIT :limit",
        {"c": corp_pk, "a": app_pk, "f": file_id, "pattern": f'%"{file_id}"%', "limit": limit},
    )


async def delete_file_row(conn: Connection, file_pk: int) -> None:
    """Remove a file's row."""
    await conn.execute("DELETE FROM stored_file WHERE id = :p", {"p": file_pk})


async def environment_id(conn: Connection, corp_pk: int) -> str:
    """The WeDa environment id of a corp (its corp id when it has none): the ``<envId>`` of ``cloud://`` ids."""
    row = await conn.fetchrow("SELECT corp_id, env_id FROM corp WHERE id = :c", {"c": corp_pk})
    return str(row["env_id"] or row["corp_id"]) if row is not None else ""
