"""Directory search and paging: the indexes the contacts APIs read through (``zida.core.org.queries``).

* ``user_department (dept_pk, user_pk)`` replaces ``(dept_pk)``: a department's members in join order are an
  index range, so a page of members is a seek (keyset on the user's row id), never a sort of the department.
* ``org_user (corp_pk, mobile)``, ``(corp_pk, union_id)``, ``(corp_pk, name)``: look-ups by mobile, by union id
  and by exact name; ``(corp_pk, updated_at, id)``: a big department's members by modification time.
* ``department (corp_pk, parent_dept_id, sort_order, dept_id)``: sub-departments in order.
* ``role_member (user_pk)`` and ``app_admin (user_pk)``: a user's roles and app-admin links (``topapi/v2/user/get``).
* ``user_name_gram (corp_pk, gram, user_pk)``: every 1- and 2-character substring of each **active** user's name
  (lower-cased by the database's ``lower``; the first 128 characters of a name), kept by triggers on ``org_user``.
  A name search for one or two characters is one index range (exact, counted from the index); a longer word's
  candidates are the users having its first two characters, each tested with the real substring match. Chinese
  names are two or three characters, so trigram indexes (``pg_trgm``, FTS5 ``trigram``) could not serve most
  searches; a scan of 100,000 names measured 21-31 ms per pass on SQLite (two passes per page: count and page),
  the gram range < 1 ms.

Department names are searched by a scan of the corp's departments (5,000 names: about 1 ms).

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

MAX_GRAM_POSITION = 128

_INDEXES = (
    ("ix_user_department_member", "user_department", ["dept_pk", "user_pk"]),
    ("ix_org_user_mobile", "org_user", ["corp_pk", "mobile"]),
    ("ix_org_user_union", "org_user", ["corp_pk", "union_id"]),
    ("ix_org_user_name", "org_user", ["corp_pk", "name"]),
    ("ix_org_user_modified", "org_user", ["corp_pk", "updated_at", "id"]),
    ("ix_department_parent", "department", ["corp_pk", "parent_dept_id", "sort_order", "dept_id"]),
    ("ix_role_member_user", "role_member", ["user_pk"]),
    ("ix_app_admin_user", "app_admin", ["user_pk"]),
)

_SQLITE_GRAMS = (
    "INSERT OR IGNORE INTO user_name_gram (corp_pk, gram, user_pk)"
    " SELECT {new}.corp_pk, substr(lower({new}.name), p.n, w.w), {new}.id"
    " FROM gram_position p, (SELECT 1 AS w UNION ALL SELECT 2) w"
    " WHERE p.n + w.w - 1 <= length({new}.name) AND {new}.active"
)

_POSTGRES_FUNCTION = f"""
CREATE FUNCTION org_user_name_grams() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM user_name_gram WHERE user_pk = OLD.id;
    END IF;
    IF NEW.active THEN
        INSERT INTO user_name_gram (corp_pk, gram, user_pk)
        SELECT DISTINCT NEW.corp_pk, substr(lower(NEW.name), n, w), NEW.id
        FROM generate_series(1, least(length(NEW.name), {MAX_GRAM_POSITION})) AS n, (VALUES (1), (2)) AS v(w)
        WHERE n + w - 1 <= length(NEW.name)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    bind = op.get_bind()
    op.drop_index("ix_user_department_dept", "user_department")
    for name, table, columns in _INDEXES:
        op.create_index(name, table, columns)
    if bind.dialect.name == "postgresql":
        op.execute(
            "CREATE TABLE user_name_gram (corp_pk BIGINT NOT NULL, gram TEXT NOT NULL,"
            " user_pk BIGINT NOT NULL REFERENCES org_user (id) ON DELETE CASCADE, PRIMARY KEY (corp_pk, gram, user_pk))"
        )
        op.execute("CREATE INDEX ix_user_name_gram_user ON user_name_gram (user_pk)")
        op.execute(_POSTGRES_FUNCTION)
        op.execute(
            "CREATE TRIGGER org_user_grams_insert AFTER INSERT ON org_user"
            " FOR EACH ROW EXECUTE FUNCTION org_user_name_grams()"
        )
        op.execute(
            "CREATE TRIGGER org_user_grams_update AFTER UPDATE OF name, active ON org_user FOR EACH ROW"
            " WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.active IS DISTINCT FROM NEW.active)"
            " EXECUTE FUNCTION org_user_name_grams()"
        )
        op.execute(
            "INSERT INTO user_name_gram (corp_pk, gram, user_pk)"
            " SELECT DISTINCT u.corp_pk, substr(lower(u.name), n, w), u.id FROM org_user u,"
            f" generate_series(1, {MAX_GRAM_POSITION}) AS n, (VALUES (1), (2)) AS v(w)"
            " WHERE u.active AND n + w - 1 <= length(u.name)"
        )
        return
    op.execute(
        "CREATE TABLE user_name_gram (corp_pk INTEGER NOT NULL, gram TEXT NOT NULL,"
        " user_pk INTEGER NOT NULL REFERENCES org_user (id) ON DELETE CASCADE,"
        " PRIMARY KEY (corp_pk, gram, user_pk)) WITHOUT ROWID"
    )
    op.execute("CREATE INDEX ix_user_name_gram_user ON user_name_gram (user_pk)")
    op.execute("CREATE TABLE gram_position (n INTEGER PRIMARY KEY)")
    bind.execute(sa.text("INSERT INTO gram_position (n) VALUES (:n)"), [{"n": n} for n in range(1, 129)])
    op.execute(
        "CREATE TRIGGER org_user_grams_insert AFTER INSERT ON org_user BEGIN "
        + _SQLITE_GRAMS.format(new="NEW")
        + "; END"
    )
    op.execute(
        "CREATE TRIGGER org_user_grams_update AFTER UPDATE OF name, active ON org_user"
        " WHEN OLD.name IS NOT NEW.name OR OLD.active IS NOT NEW.active BEGIN"
        " DELETE FROM user_name_gram WHERE user_pk = OLD.id; " + _SQLITE_GRAMS.format(new="NEW") + "; END"
    )
    op.execute(_SQLITE_GRAMS.format(new="u").replace("FROM gram_position", "FROM org_user u, gram_position"))


def downgrade() -> None:
    bind = op.get_bind()
    op.execute("DROP TRIGGER IF EXISTS org_user_grams_update" + (" ON org_user" if _pg(bind) else ""))
    op.execute("DROP TRIGGER IF EXISTS org_user_grams_insert" + (" ON org_user" if _pg(bind) else ""))
    if _pg(bind):
        op.execute("DROP FUNCTION IF EXISTS org_user_name_grams()")
    else:
        op.execute("DROP TABLE gram_position")
    op.execute("DROP TABLE user_name_gram")
    for name, table, _ in reversed(_INDEXES):
        op.drop_index(name, table)
    op.create_index("ix_user_department_dept", "user_department", ["dept_pk"])


def _pg(bind: sa.engine.Connection) -> bool:
    return bind.dialect.name == "postgresql"
