"""Core schema: org, access, apps and forms, form records and their operation log.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# JSON is jsonb on PostgreSQL and TEXT on SQLite (TEXT affinity: never coerced to a number).
JSON = sa.Text().with_variant(postgresql.JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias).
BIGPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _pk() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("id", BIGPK, primary_key=True, autoincrement=True)


def _fk(name: str, target: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, BIGPK, sa.ForeignKey(f"{target}.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "corp",
        _pk(),
        sa.Column("corp_id", sa.Text, nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("task_api_code_enc", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "department",
        _pk(),
        _fk("corp_pk", "corp"),
        sa.Column("dept_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("name_en", sa.Text),
        sa.Column("parent_dept_id", sa.BigInteger),
        sa.Column("manager_user_ids", JSON, nullable=False),
        sa.Column("sort_order", sa.Integer, nullable=False, server_default="0"),
        sa.UniqueConstraint("corp_pk", "dept_id"),
    )
    op.create_table(
        "org_user",
        _pk(),
        _fk("corp_pk", "corp"),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("name_en", sa.Text),
        sa.Column("title", sa.Text),
        sa.Column("mobile", sa.Text),
        sa.Column("email", sa.Text),
        sa.Column("union_id", sa.Text, nullable=False),
        sa.Column("manager_user_id", sa.Text),
        sa.Column("password_hash", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("corp_pk", "user_id"),
    )
    op.create_table(
        "user_department",
        _fk("user_pk", "org_user"),
        _fk("dept_pk", "department"),
        sa.Column("position", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("user_pk", "dept_pk"),
    )
    op.create_index("ix_user_department_dept", "user_department", ["dept_pk"])
    op.create_table(
        "role",
        _pk(),
        _fk("corp_pk", "corp"),
        sa.Column("role_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("group_name", sa.Text),
        sa.UniqueConstraint("corp_pk", "role_id"),
    )
    op.create_table(
        "role_member",
        _fk("role_pk", "role"),
        _fk("user_pk", "org_user"),
        sa.PrimaryKeyConstraint("role_pk", "user_pk"),
    )
    op.create_table(
        "credential",
        _pk(),
        _fk("corp_pk", "corp"),
        sa.Column("app_key", sa.Text, nullable=False, unique=True),
        sa.Column("secret_hash", sa.Text, nullable=False),
        sa.Column("scopes", JSON, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "access_token",
        _pk(),
        _fk("credential_pk", "credential"),
        sa.Column("token_key", sa.Text, nullable=False, unique=True),
        sa.Column("token_digest", sa.Text, nullable=False, unique=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_access_token_credential", "access_token", ["credential_pk", "expires_at"])
    op.create_table(
        "app",
        _pk(),
        _fk("corp_pk", "corp"),
        sa.Column("app_type", sa.Text, nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("name_en", sa.Text),
        sa.Column("description", sa.Text),
        sa.Column("icon", sa.Text),
        sa.Column("status", sa.Text, nullable=False, server_default="ONLINE"),
        sa.Column("system_token_digest", sa.Text, nullable=False),
        sa.Column("system_token_enc", sa.Text, nullable=False),
        sa.Column("creator_user_id", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "app_admin",
        _fk("app_pk", "app"),
        _fk("user_pk", "org_user"),
        sa.PrimaryKeyConstraint("app_pk", "user_pk"),
    )
    op.create_table(
        "form",
        _pk(),
        _fk("app_pk", "app"),
        sa.Column("form_uuid", sa.Text, nullable=False, unique=True),
        sa.Column("title_zh", sa.Text, nullable=False),
        sa.Column("title_en", sa.Text),
        sa.Column("form_type", sa.Text, nullable=False),
        sa.Column("current_version", sa.Integer, nullable=False),
        sa.Column("creator_user_id", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_form_app", "form", ["app_pk", "id"])
    op.create_table(
        "form_version",
        _fk("form_pk", "form"),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("fields", JSON, nullable=False),
        sa.Column("process", JSON),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("form_pk", "version"),
    )
    op.create_table(
        "form_instance",
        _pk(),
        sa.Column("instance_id", sa.Text, nullable=False, unique=True),
        _fk("corp_pk", "corp"),
        _fk("app_pk", "app"),
        _fk("form_pk", "form"),
        sa.Column("form_version", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("originator_user_id", sa.Text, nullable=False),
        sa.Column("modifier_user_id", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("modified_at", sa.BigInteger, nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("data_version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("serial_no", sa.Text),
        sa.Column("process_instance_id", sa.Text),
        sa.Column("instance_status", sa.Text),
        sa.Column("approved_result", sa.Text),
    )
    op.create_index("ix_form_instance_created", "form_instance", ["form_pk", "created_at", "id"])
    op.create_index("ix_form_instance_modified", "form_instance", ["form_pk", "modified_at", "id"])
    op.create_index(
        "ix_form_instance_originator", "form_instance", ["form_pk", "originator_user_id", "created_at", "id"]
    )
    op.create_table(
        "form_operation_log",
        _pk(),
        _fk("corp_pk", "corp"),
        _fk("form_pk", "form"),
        sa.Column("instance_id", sa.Text, nullable=False),
        sa.Column("operator_user_id", sa.Text, nullable=False),
        sa.Column("operation_type", sa.Text, nullable=False),
        sa.Column("changes", JSON, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_form_operation_log_instance", "form_operation_log", ["instance_id", "id"])
