"""Storage: one async interface over SQLite (embedded) and PostgreSQL, migrations, and the SQL compiler."""

from zida.db.database import Connection, Database, Row, in_list, open_database

__all__ = ["Connection", "Database", "Row", "in_list", "open_database"]
