"""Ids that leave the server are never handed out twice (SQLite).

SQLite gives a new row one more than the largest id in its table, so once the newest row is gone (pruned, or
deleted with its record) the next row gets its id again. Where that id reached a client or another table, two
things then had one name:

* ``outbox_event``: once the retention prune emptied the table, new events took old ids. A subscription delivers
  only events past the newest id it knew when it was made (``start_event_id``), so they were marked dispatched and
  never delivered, and their ``eventId`` (made from the id) repeated events already delivered.
* ``process_instance``: a task id is the instance's id × ``TASK_ID_BLOCK`` + n, so the approval started after the
  newest one was deleted had that approval's task ids (``bpms_task_change`` of both under one ``taskId``).
* ``event_delivery`` (the ids of the failed lists and of redelivery) and ``form_remark`` (a comment's id, which a
  reply names) likewise.

These four tables are rebuilt with ``AUTOINCREMENT`` (SQLite's documented way to change a table: a new table, the
rows copied with their ids, the old one dropped, the new one renamed; the indexes and the triggers naming the table
made again); the sequence starts past every id used so far, and ``outbox_event``'s past the newest id any
subscription or delivery has seen (an outbox already emptied by a prune). PostgreSQL's identity sequences never hand
out an id twice: nothing to do there.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import re

from alembic import op
from sqlalchemy import Connection, text

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

TABLES = ("outbox_event", "event_delivery", "process_instance", "form_remark")


def _floor(conn: Connection, table: str) -> int:
    """The largest id the table's rows have had, as far as the database still knows."""
    queries = [f"SELECT MAX(id) FROM {table}"]
    if table == "outbox_event":
        queries += ["SELECT MAX(start_event_id) FROM event_subscription", "SELECT MAX(event_id) FROM event_delivery"]
    return max(int(conn.execute(text(q)).scalar() or 0) for q in queries)


def _autoincrement(conn: Connection, table: str) -> None:
    create = conn.execute(
        text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"), {"t": table}
    ).scalar_one()
    if "AUTOINCREMENT" in create:
        return
    floor = _floor(conn, table)
    new = f"{table}__autoincrement"
    rebuilt, named = re.subn(rf"^CREATE TABLE {table} \(", f"CREATE TABLE {new} (", create)
    key = "id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,"
    rebuilt, keyed = re.subn(r"\bid INTEGER NOT NULL,", key, rebuilt, count=1)
    rebuilt, dropped = re.subn(r",\s*PRIMARY KEY \(id\)", "", rebuilt)
    if (named, keyed, dropped) != (1, 1, 1):
        raise RuntimeError(f"migration 0022: {table}'s definition is not the one this migration knows: {create}")
    indexes = conn.execute(
        text("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND sql IS NOT NULL"), {"t": table}
    ).scalars()
    triggers = [
        (name, sql)
        for name, sql in conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
        if re.search(rf"\b{table}\b", sql)
    ]
    index_sql = list(indexes)
    for name, _ in triggers:  # a trigger naming a missing table would stop the rename
        conn.execute(text(f'DROP TRIGGER "{name}"'))
    conn.execute(text(rebuilt))
    conn.execute(text(f"INSERT INTO {new} SELECT * FROM {table}"))
    conn.execute(text(f"DROP TABLE {table}"))
    conn.execute(text(f"ALTER TABLE {new} RENAME TO {table}"))
    for sql in index_sql:
        conn.execute(text(sql))
    for _, sql in triggers:
        conn.execute(text(sql))
    conn.execute(text("DELETE FROM sqlite_sequence WHERE name = :t"), {"t": table})
    conn.execute(text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :s)"), {"t": table, "s": floor})


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":
        return
    # Foreign keys are off on the migrations' connection (pysqlite's default): dropping the old table cascades to
    # nothing, and the tables naming it find the new one under its name.
    if conn.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("migration 0022 rebuilds tables: it needs foreign keys off on its connection")
    for table in TABLES:
        _autoincrement(conn, table)


def downgrade() -> None:
    """Nothing to undo that matters: AUTOINCREMENT only keeps ids from being used again."""
