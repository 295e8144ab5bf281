"""SQL for stored files (their writes are the actions of ``zida.core.files.actions``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from zida.core.apps.models import Field
from zida.core.files.models import StoredFile, files_named
from zida.db import Connection, Row

__all__ = [
    "FormFields",
    "delete_file_row",
    "delete_unattached_row",
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


async def mark_attached(conn: Connection, file_pks: Iterable[int], at: int) -> set[int]:
    """Record that these files are referenced by a record (the first ``at`` stays); those of them that no longer
    exist (``zida files gc`` removed them since the write checked its values), which the caller refuses. One
    statement: each row is locked by it, so a gc removing an unattached file either went first (the file is
    missing here) or waits and then finds it attached and keeps it."""
    pks = sorted(set(file_pks))
    if not pks:
        return set()
    names = {f"p{i}": pk for i, pk in enumerate(pks)}
    rows = await conn.fetch(
        "UPDATE stored_file SET attached_at = COALESCE(attached_at, :at) WHERE state = 'stored'"
        f" AND id IN ({', '.join(':' + n for n in names)}) RETURNING id",
        {"at": at, **names},
    )
    return set(pks) - {int(r["id"]) for r in rows}


async def delete_unattached_row(conn: Connection, file_pk: int) -> bool:
    """Remove a file's row unless a record attached it meanwhile; whether it was removed."""
    rows = await conn.fetch(
        "DELETE FROM stored_file WHERE id = :p AND attached_at IS NULL RETURNING id", {"p": file_pk}
    )
    return bool(rows)


async def records_referencing(
    conn: Connection, corp_pk: int, file_id: str, *, app_pk: int | None, limit: int
) -> list[Row]:
    """Live records of the corp (of one app, when given) that name the file as a file (an attachment or image item,
    a signature: ``zida.core.files.attachments.files_named``; an id merely written in a text names nothing):
    ``instance_id``, ``app_pk``, ``originator_user_id``, ``process_instance_id``. A scan of the values' text, each
    match read against its form's fields: used by the rare checks that need it (a temporary URL for a user), never on
    the hot path."""
    where = "corp_pk = :c" + (" AND app_pk = :a" if app_pk is not None else "")
    text = "CAST(data AS text)" if conn.sql.name == "postgresql" else "data"
    found: list[Row] = []
    fields = FormFields(conn)
    last = 0
    while len(found) < limit:
        rows = await conn.fetch(
            f"SELECT id, instance_id, app_pk, originator_user_id, process_instance_id, form_pk, form_version,"
            f" {text} AS data FROM form_instance WHERE {where} AND id > :last AND {text} LIKE :pattern"
            " ORDER BY id LIMIT :n",
            {"c": corp_pk, "a": app_pk, "pattern": f'%"{file_id}"%', "last": last, "n": 100},
        )
        for row in rows:
            schema = await fields.of(int(row["form_pk"]), int(row["form_version"]))
            if file_id in files_named(orjson.loads(row["data"]), schema):
                found.append(row)
        if len(rows) < 100:
            break
        last = int(rows[-1]["id"])
    return found[:limit]


class FormFields:
    """The fields of form versions, each read once (a walk over many records of few forms)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._known: dict[tuple[int, int], tuple[Field, ...]] = {}

    async def of(self, form_pk: int, version: int) -> tuple[Field, ...]:
        """The fields of one version of a form (none when it is gone)."""
        key = (form_pk, version)
        if key not in self._known:
            raw = await self.conn.fetchval(
                "SELECT fields FROM form_version WHERE form_pk = :f AND version = :v", {"f": form_pk, "v": version}
            )
            self._known[key] = tuple(Field.from_dict(x) for x in orjson.loads(raw)) if raw else ()
        return self._known[key]


async def delete_file_row(conn: Connection, file_pk: int) -> None:
    """Remove a file's row."""
    await conn.execute("DELETE FROM stored_file WHERE id = :p", {"p": file_pk})


async def environment_id(conn: Connection, corp_pk: int) -> str:
    """The WeDa environment id of a corp (its corp id when it has none): the ``<envId>`` of ``cloud://`` ids."""
    row = await conn.fetchrow("SELECT corp_id, env_id FROM corp WHERE id = :c", {"c": corp_pk})
    return str(row["env_id"] or row["corp_id"]) if row is not None else ""
