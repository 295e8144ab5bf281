"""Migration 0019: the approval to-dos 0014 copied into ``todo_task`` are removed, clients' to-dos stay, and a
client's ``source_id`` is unique per creator for every to-do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.conftest import engine_at, fresh_database
from zida.db.migrate import upgrade


@pytest.fixture
def at_0018(tmp_path: Path) -> Iterator[str]:
    """A database migrated to 0018 (a new PostgreSQL schema, dropped after; or a SQLite file)."""
    with fresh_database(tmp_path, "0018") as url:
        yield url


_TODO = (
    "INSERT INTO todo_task (corp_pk, todo_id, creator_user_id, subject, done, source, source_id, approval_task_id,"
    " details, created_at, modified_at) VALUES (1, :id, 'li', 's', false, :source, :sid, :task, '{}', 1, 1)"
)


def test_the_copies_of_approval_todos_go_and_clients_todos_stay(at_0018: str) -> None:
    with engine_at(at_0018) as engine:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO corp (id, corp_id, name, created_at, updated_at) VALUES (1, 'c', 'c', 1, 1)")
            )
            conn.execute(text(_TODO), {"id": "TODO-client", "source": "app", "sid": "k1", "task": None})
            conn.execute(text(_TODO), {"id": "TODO-copy", "source": "approval", "sid": "77", "task": 77})
            for todo_id, user in (("TODO-client", "wang"), ("TODO-copy", "chen")):
                conn.execute(
                    text(
                        "INSERT INTO todo_member (todo_pk, corp_pk, role, user_id, position, done)"
                        " SELECT id, 1, 'executor', :u, 0, false FROM todo_task WHERE todo_id = :t"
                    ),
                    {"u": user, "t": todo_id},
                )
        upgrade(at_0018)
        with engine.begin() as conn:
            assert [r[0] for r in conn.execute(text("SELECT todo_id FROM todo_task"))] == ["TODO-client"]
            assert [r[0] for r in conn.execute(text("SELECT user_id FROM todo_member"))] == ["wang"]
            columns = conn.execute(text("SELECT * FROM todo_task")).keys()
            assert "approval_task_id" not in columns
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO todo_task (corp_pk, todo_id, creator_user_id, subject, done, source, source_id,"
                    " details, created_at, modified_at) VALUES (1, 'TODO-again', 'li', 's', false, 'app', 'k1', '{}',"
                    " 1, 1)"
                )
            )
