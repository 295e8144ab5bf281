"""Migration 0022: ids that leave the server are never handed out twice, even after the newest row is gone (SQLite
rebuilds four tables with AUTOINCREMENT; PostgreSQL's sequences never reuse an id)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, text

from tests.conftest import engine_at, fresh_database, load_fixture_bundle
from zida.db.migrate import upgrade


def _event(conn: Connection, corp: int) -> int:
    conn.execute(
        text("INSERT INTO outbox_event (corp_pk, event_type, payload, created_at) VALUES (:c, 't', '{}', 1)"),
        {"c": corp},
    )
    return int(conn.execute(text("SELECT MAX(id) FROM outbox_event")).scalar_one())


def _remark(conn: Connection, corp: int, form: int) -> int:
    conn.execute(
        text(
            "INSERT INTO form_remark (corp_pk, form_pk, instance_id, content, creator_user_id, at_user_ids, created_at)"
            " VALUES (:c, :f, 'FINST-X', 'c', 'u', '[]', 1)"
        ),
        {"c": corp, "f": form},
    )
    return int(conn.execute(text("SELECT MAX(id) FROM form_remark")).scalar_one())


def test_ids_are_not_used_again_after_the_newest_row_is_gone(tmp_path: Path) -> None:
    with fresh_database(tmp_path, "0021") as url:
        load_fixture_bundle(url, "corp_events.yaml")
        with engine_at(url) as engine, engine.begin() as conn:
            corp = int(conn.execute(text("SELECT id FROM corp WHERE corp_id = 'corpEvents'")).scalar_one())
            form = int(conn.execute(text("SELECT MIN(id) FROM form")).scalar_one())
            events = [_event(conn, corp) for _ in range(3)]
            remarks = [_remark(conn, corp, form) for _ in range(2)]
            # The retention prune empties the outbox; a subscription made meanwhile knows the newest id.
            conn.execute(text("DELETE FROM outbox_event"))
            credential = conn.execute(text("SELECT id FROM credential WHERE app_key = 'ev-http'")).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO event_subscription (corp_pk, credential_pk, kind, tags, schedule, start_event_id,"
                    " failures, created_at, updated_at) VALUES (:c, :k, 'http', '[\"*\"]', 'persistent', :s, 0, 1, 1)"
                ),
                {"c": corp, "k": credential, "s": events[-1]},
            )
        upgrade(url)
        with engine_at(url) as engine, engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                for table in ("outbox_event", "event_delivery", "process_instance", "form_remark"):
                    definition = text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t")
                    assert "AUTOINCREMENT" in conn.execute(definition, {"t": table}).scalar_one()
                indexes = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'event_delivery'"
                assert "ix_event_delivery_finished" in set(conn.execute(text(indexes)).scalars())
                triggers = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
                assert "form_instance_count_delete" in set(conn.execute(text(triggers)).scalars())  # names form_remark
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
            assert _event(conn, corp) > events[-1]  # past every event a subscription has seen
            # From now on the newest row going (pruned, or with its record) frees no id.
            newest_event = _event(conn, corp)
            conn.execute(text("DELETE FROM outbox_event WHERE id = :i"), {"i": newest_event})
            assert _event(conn, corp) > newest_event
            newest_remark = _remark(conn, corp, form)
            assert newest_remark > remarks[-1]
            conn.execute(text("DELETE FROM form_remark WHERE id = :i"), {"i": newest_remark})
            assert _remark(conn, corp, form) > newest_remark
