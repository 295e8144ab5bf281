"""Migration 0021: lighter deliveries. Pruning's index holds finished deliveries only, and a corp's or a
credential's deliveries still go with it (on PostgreSQL through the subscription, whose key cascades: the corp key
is gone)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, text

from tests.conftest import engine_at, fresh_database, load_fixture_bundle
from zida.db.migrate import upgrade


def _deliveries(conn: Connection, corp_id: str, app_key: str) -> int:
    """A subscription of ``app_key`` with a pending and a delivered delivery; returns its id."""
    corp = conn.execute(text("SELECT id FROM corp WHERE corp_id = :c"), {"c": corp_id}).scalar_one()
    credential = conn.execute(text("SELECT id FROM credential WHERE app_key = :k"), {"k": app_key}).scalar_one()
    conn.execute(
        text(
            "INSERT INTO event_subscription (corp_pk, credential_pk, kind, tags, schedule, start_event_id, failures,"
            " created_at, updated_at) VALUES (:c, :k, 'stream', '[\"*\"]', 'persistent', 0, 0, 1, 1)"
        ),
        {"c": corp, "k": credential},
    )
    sub = conn.execute(text("SELECT id FROM event_subscription WHERE credential_pk = :k"), {"k": credential})
    sub_pk = int(sub.scalar_one())
    for event_id, status, finished in ((1, "pending", None), (2, "delivered", 5)):
        conn.execute(
            text(
                "INSERT INTO event_delivery (subscription_id, corp_pk, event_id, tag, object_key, payload, status,"
                " next_at, event_time, created_at, finished_at) VALUES (:s, :c, :e, 't', 'o', '{}', :st, 0, 1, 1, :f)"
            ),
            {"s": sub_pk, "c": corp, "e": event_id, "st": status, "f": finished},
        )
    return sub_pk


def _count(conn: Connection, sub_pk: int) -> int:
    query = text("SELECT count(*) FROM event_delivery WHERE subscription_id = :s")
    return int(conn.execute(query, {"s": sub_pk}).scalar_one())


def test_deliveries_go_with_their_credential_and_corp_and_pruning_indexes_finished_ones(tmp_path: Path) -> None:
    with fresh_database(tmp_path, "0020") as url:
        load_fixture_bundle(url, "corp_events.yaml")
        upgrade(url)
        with engine_at(url) as engine, engine.begin() as conn:
            postgresql = conn.dialect.name == "postgresql"
            if not postgresql:
                conn.exec_driver_sql("PRAGMA foreign_keys = ON")
            if postgresql:
                definition = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_event_delivery_finished'"
                definition += " AND schemaname = current_schema()"
            else:
                definition = "SELECT sql FROM sqlite_master WHERE name = 'ix_event_delivery_finished'"
            assert "finished_at IS NOT NULL" in conn.execute(text(definition)).scalar_one()
            by_credential, by_corp = (
                _deliveries(conn, "corpEvents", "ev-http"),
                _deliveries(conn, "corpEvents", "ev-all"),
            )
            assert (_count(conn, by_credential), _count(conn, by_corp)) == (2, 2)
            conn.execute(text("DELETE FROM credential WHERE app_key = 'ev-http'"))
            assert _count(conn, by_credential) == 0
            conn.execute(text("DELETE FROM corp WHERE corp_id = 'corpEvents'"))
            assert _count(conn, by_corp) == 0
            assert conn.execute(text("SELECT count(*) FROM event_delivery")).scalar_one() == 0
