"""``zida.db.migrate``: the schema check every command and the server start with."""

from __future__ import annotations

import subprocess
import sys

from zida.db.migrate import SCHEMA_HEADS, schema_heads


def test_the_checked_heads_are_the_heads_of_the_migration_scripts() -> None:
    # A new migration moves SCHEMA_HEADS with it: the server checks a database against that constant.
    assert schema_heads() == SCHEMA_HEADS, "a new migration: set SCHEMA_HEADS in src/zida/db/migrate.py to its revision"


def test_serving_imports_neither_alembic_nor_sqlalchemy() -> None:
    code = "import sys, zida.cli, zida.server; print(sorted(m for m in ('alembic', 'sqlalchemy') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
