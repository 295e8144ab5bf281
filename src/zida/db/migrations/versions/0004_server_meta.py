"""Server metadata (the server key's fingerprint) and derived search state kept by triggers.

* ``server_meta``: facts about the installation itself.
* ``form_record_count``: the number of records of each form, so an unfiltered ``totalCount`` costs no scan.
  The same delete trigger removes a deleted record's remarks (comments have no life of their own).
  Triggers on ``form_instance`` keep it exact in the inserting/deleting transaction; PostgreSQL spreads each
  form over shard rows (one per database session, modulo 64) so concurrent inserts don't queue on one row.
* ``form_array_field`` / ``form_field_value`` (used on SQLite, which has no GIN): one row per element of a
  searchable array field (employees, departments, check boxes…), kept by triggers, indexed by value.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BIGPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_PG_COUNT = """
CREATE FUNCTION zida_count_form_instance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO form_record_count (form_pk, shard, n) VALUES (NEW.form_pk, pg_backend_pid() % 64, 1)
        ON CONFLICT (form_pk, shard) DO UPDATE SET n = form_record_count.n + 1;
        RETURN NEW;
    END IF;
    INSERT INTO form_record_count (form_pk, shard, n) VALUES (OLD.form_pk, pg_backend_pid() % 64, -1)
    ON CONFLICT (form_pk, shard) DO UPDATE SET n = form_record_count.n - 1;
    DELETE FROM form_remark WHERE instance_id = OLD.instance_id;
    RETURN OLD;
END $$;
CREATE TRIGGER form_instance_count AFTER INSERT OR DELETE ON form_instance
FOR EACH ROW EXECUTE FUNCTION zida_count_form_instance();
"""

_SQLITE_TRIGGERS = [
    """CREATE TRIGGER form_instance_count_insert AFTER INSERT ON form_instance BEGIN
        INSERT INTO form_record_count (form_pk, shard, n) VALUES (NEW.form_pk, 0, 1)
        ON CONFLICT (form_pk, shard) DO UPDATE SET n = n + 1;
    END""",
    """CREATE TRIGGER form_instance_count_delete AFTER DELETE ON form_instance BEGIN
        INSERT INTO form_record_count (form_pk, shard, n) VALUES (OLD.form_pk, 0, -1)
        ON CONFLICT (form_pk, shard) DO UPDATE SET n = n - 1;
        DELETE FROM form_remark WHERE instance_id = OLD.instance_id;
    END""",
    # Elements of searchable array fields (scalars stored as a single element, objects skipped).
    """CREATE TRIGGER form_instance_values_insert AFTER INSERT ON form_instance
    WHEN EXISTS (SELECT 1 FROM form_array_field WHERE form_pk = NEW.form_pk) BEGIN
        INSERT INTO form_field_value (instance_pk, form_pk, field_id, value)
        SELECT NEW.id, NEW.form_pk, s.field_id, e.value
        FROM form_array_field s, json_each(NEW.data, '$.' || s.field_id) e
        WHERE s.form_pk = NEW.form_pk AND e.type NOT IN ('object', 'array');
    END""",
    """CREATE TRIGGER form_instance_values_update AFTER UPDATE OF data ON form_instance
    WHEN EXISTS (SELECT 1 FROM form_array_field WHERE form_pk = NEW.form_pk) BEGIN
        DELETE FROM form_field_value WHERE instance_pk = OLD.id;
        INSERT INTO form_field_value (instance_pk, form_pk, field_id, value)
        SELECT NEW.id, NEW.form_pk, s.field_id, e.value
        FROM form_array_field s, json_each(NEW.data, '$.' || s.field_id) e
        WHERE s.form_pk = NEW.form_pk AND e.type NOT IN ('object', 'array');
    END""",
    """CREATE TRIGGER form_instance_values_delete AFTER DELETE ON form_instance BEGIN
        DELETE FROM form_field_value WHERE instance_pk = OLD.id;
    END""",
]


def upgrade() -> None:
    op.create_table(
        "server_meta",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    # No foreign key to form: rows are written by triggers, also while a form's records cascade away.
    op.create_table(
        "form_record_count",
        sa.Column("form_pk", sa.BigInteger, primary_key=True),
        sa.Column("shard", sa.Integer, primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "form_array_field",
        sa.Column("form_pk", sa.BigInteger, primary_key=True),
        sa.Column("field_id", sa.Text, primary_key=True),
    )
    op.create_table(
        "form_field_value",
        sa.Column("instance_pk", BIGPK, nullable=False),
        sa.Column("form_pk", sa.BigInteger, nullable=False),
        sa.Column("field_id", sa.Text, nullable=False),
        sa.Column("value", sa.Text),
    )
    op.create_index("ix_form_field_value", "form_field_value", ["form_pk", "field_id", "value", "instance_pk"])
    op.create_index("ix_form_field_value_instance", "form_field_value", ["instance_pk"])
    op.execute(
        "INSERT INTO form_record_count (form_pk, shard, n) SELECT form_pk, 0, count(*) FROM form_instance"
        " GROUP BY form_pk"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_COUNT)
    else:
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS form_instance_count ON form_instance")
        op.execute("DROP FUNCTION IF EXISTS zida_count_form_instance()")
    else:
        for name in ("count_insert", "count_delete", "values_insert", "values_update", "values_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS form_instance_{name}")
    for table in ("form_field_value", "form_array_field", "form_record_count", "server_meta"):
        op.drop_table(table)
