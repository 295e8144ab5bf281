"""One core for every dialect: neutral names for secrets and scopes, domain events, an audit log, inactive users.

* ``app.system_token_*`` → ``app.secret_*`` and ``corp.task_api_code_enc`` → ``corp.org_secret_enc``: an app's
  secret and a corp's org-level secret, whatever a dialect calls them.
* ``credential.scopes`` hold Zida's neutral scope names (``records.read``…, ``*``); names written as DingTalk
  permission points (``Yida.Form.Read``…) are translated.
* ``outbox_event`` rows hold domain events (topic + ``{object, actor, app, data}``); the ``bpms_*`` rows written
  before are translated (facts the old payload lacks are looked up, else left empty).
* ``audit_log``: one row per change of the org, apps, forms and credentials (who, what, the changed fields).
* ``org_user.active``: a deactivated user keeps his history but can no longer act or be given tasks.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op
from alembic.util import CommandError
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.Text().with_variant(postgresql.JSONB(), "postgresql")
BIGPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The permission names credentials were written with until now (frozen here: this is history, not the live map).
_OLD_SCOPES = {
    "Yida.Form.Read": ["records.read"],
    "Yida.Form.Write": ["records.write"],
    "Yida.Process.Read": ["processes.read"],
    "Yida.Process.Write": ["processes.write"],
    "Yida.Task.Read": ["tasks.read"],
    "Yida.Task.Write": ["tasks.write"],
    "Yida.Comment.Write": ["comments.write"],
    "Yida.App.Read": ["apps.read"],
    "Yida.Attachment.Read": ["files.read"],
    "Contact.User.Read": ["directory.read"],
    "Zida.Admin": ["admin"],
    "Yida.*": [
        "records.read",
        "records.write",
        "processes.read",
        "processes.write",
        "tasks.read",
        "tasks.write",
        "comments.write",
        "apps.read",
        "files.read",
    ],
}
_OLD_RESULTS = {"agree": "agree", "refuse": "disagree", "redirect": "redirect", "return": "return"}
_PROCESS_TOPICS = {"start": "process.started", "finish": "process.finished", "terminate": "process.terminated"}
_PROCESS_TOPICS["delete"] = "process.deleted"
_TASK_TOPICS = {"start": "task.created", "finish": "task.finished", "cancel": "task.cancelled"}


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _neutral_scopes(names: list[str]) -> list[str]:
    if "*" in names:
        return ["*"]
    out: set[str] = set()
    for name in names:
        out.update(_OLD_SCOPES.get(name, [name] if "." in name and name.islower() else []))
    return sorted(out)


def _event(conn: sa.Connection, event_type: str, old: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """A ``bpms_*`` payload as a domain event (topic, payload), or None for anything else."""
    iid = old.get("processInstanceId")
    ref = conn.execute(
        sa.text(
            "SELECT pi.originator_user_id, f.form_uuid, a.app_type FROM process_instance pi"
            " JOIN form f ON f.id = pi.form_pk JOIN app a ON a.id = pi.app_pk WHERE pi.instance_id = :i"
        ),
        {"i": iid},
    ).first()
    common = {"form": ref[1] if ref else None, "process": old.get("processCode"), "title": old.get("title")}
    app = ref[2] if ref else None
    kind = old.get("type")
    if event_type == "bpms_instance_change" and kind in _PROCESS_TOPICS:
        deleted = kind == "delete"
        data = {
            **common,
            "originator": (ref[0] if ref else None) if deleted else old.get("staffId"),
            "started_at": old.get("createTime"),
        }
        if "result" in old:
            data["result"] = _OLD_RESULTS.get(old["result"], old["result"])
        if "finishTime" in old:
            data["finished_at"] = old["finishTime"]
        actor = old.get("staffId")
        return _PROCESS_TOPICS[kind], {"object": iid, "actor": actor, "app": app, "data": data}
    if event_type == "bpms_task_change" and kind in _TASK_TOPICS:
        node = conn.execute(sa.text("SELECT node_id FROM task WHERE id = :t"), {"t": old.get("taskId")}).first()
        data = {
            "process_instance": iid,
            **common,
            "node": node[0] if node else None,
            "assignee": old.get("staffId"),
            "created_at": old.get("createTime"),
        }
        if "result" in old:
            data["result"] = _OLD_RESULTS.get(old["result"], old["result"])
            data["remark"] = old.get("remark", "")
        if "finishTime" in old:
            data["finished_at"] = old["finishTime"]
        actor = old.get("staffId") if kind == "finish" else None
        return _TASK_TOPICS[kind], {"object": str(old.get("taskId")), "actor": actor, "app": app, "data": data}
    return None


def upgrade() -> None:
    conn = op.get_bind()
    pg = conn.dialect.name == "postgresql"

    def stored(value: Any) -> Any:  # jsonb takes the object, SQLite's TEXT its JSON text
        return value if pg else json.dumps(value, ensure_ascii=False)

    op.execute("ALTER TABLE app RENAME COLUMN system_token_digest TO secret_digest")
    op.execute("ALTER TABLE app RENAME COLUMN system_token_enc TO secret_enc")
    op.execute("ALTER TABLE corp RENAME COLUMN task_api_code_enc TO org_secret_enc")
    op.add_column("org_user", sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()))
    op.create_table(
        "audit_log",
        sa.Column("id", BIGPK, primary_key=True, autoincrement=True),
        sa.Column("corp_pk", BIGPK, sa.ForeignKey("corp.id", ondelete="CASCADE"), nullable=False),
        sa.Column("actor", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("object_kind", sa.Text, nullable=False),
        sa.Column("object_id", sa.Text, nullable=False),
        sa.Column("changes", JSON, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_audit_log_corp", "audit_log", ["corp_pk", "id"])
    op.create_index("ix_audit_log_object", "audit_log", ["corp_pk", "object_kind", "object_id", "id"])

    for row in conn.execute(sa.text("SELECT id, scopes FROM credential")).all():
        names = _json(row[1])
        neutral = _neutral_scopes([str(n) for n in names])
        if neutral != names:
            conn.execute(
                sa.text("UPDATE credential SET scopes = :s WHERE id = :id").bindparams(sa.bindparam("s", type_=JSON)),
                {"s": stored(neutral), "id": row[0]},
            )
    rows = conn.execute(
        sa.text("SELECT id, event_type, payload FROM outbox_event WHERE event_type LIKE 'bpms_%' ORDER BY id")
    ).all()
    for row in rows:
        converted = _event(conn, row[1], _json(row[2]))
        if converted is None:
            continue
        topic, payload = converted
        conn.execute(
            sa.text("UPDATE outbox_event SET event_type = :t, payload = :p WHERE id = :id").bindparams(
                sa.bindparam("p", type_=JSON)
            ),
            {"t": topic, "p": stored(payload), "id": row[0]},
        )


def downgrade() -> None:
    # The old payloads and permission names are not kept: going back is restoring the backup taken before upgrading.
    raise CommandError("migration 0005 translates data forward only; restore a backup to go back")
