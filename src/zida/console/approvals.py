"""An approval: the form data as entered, the flow (who acted when, and what they wrote), and the actions the
signed-in user may take now — on his task: agree, refuse (a comment is required), transfer, return, add signers
(加签, before him or after he agrees); as the originator before anyone acted: withdraw; as the originator or an app
admin of a running approval: urge (催办) and terminate (终止). Each action is the workflow engine's, with the same
rules as every API; the page offers only what the access policy allows, and the engine checks again."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from zida.console.common import moment, names_of
from zida.console.fields import display_values, referenced
from zida.console.web import CONSOLE, Ctx, console_page, redirect, render, status_of
from zida.core.access.policy import can_manage_approval
from zida.core.apps.queries import get_form
from zida.core.errors import InvalidArgument, ZidaError
from zida.core.org.repository import find_departments
from zida.core.principals import AppActor
from zida.core.workflow import actions
from zida.core.workflow.definition import START_ACTIVITY_ID, ProcessDefinition
from zida.core.workflow.queries import instance_app_pk, instance_history
from zida.ids import is_decimal

__all__ = ["approval"]

ACTIONS = ("agree", "refuse", "transfer", "return", "add_signer", "withdraw", "urge", "terminate")
_MAX_REMARK = 2000
_MAX_SIGNERS = 20


def _node_name(definition: ProcessDefinition, node_id: str | None, lang: str) -> str:
    if not node_id or not definition.has_node(node_id):
        return ""
    node = definition.node(node_id)
    name_en = getattr(node, "name_en", None)
    return str(name_en if lang == "en_US" and name_en else node.name or "")


async def _page(ctx: Ctx, instance_id: str, *, status: int = 200, error: str | None = None, **entered: str) -> Response:
    db = ctx.zida.db
    actor = await ctx.actor(await instance_app_pk(db, ctx.corp.pk, instance_id))
    inst, definition, operations, tasks = await instance_history(db, actor, instance_id)
    form = await get_form(db, actor, None, form_pk=inst.form_pk, version=inst.form_version)
    users, dept_ids = referenced(form.fields, inst.record.data)
    people_ids = users | {inst.originator_user_id} | {t.assignee_user_id for t in tasks}
    for op in operations:
        people_ids.update(op.user_ids)
        if op.actor_user_id:
            people_ids.add(op.actor_user_id)
    names = await names_of(ctx, people_ids)
    depts = {d: dept.name for d, dept in (await find_departments(db, ctx.corp.pk, dept_ids)).items()}
    data = display_values(
        form.fields,
        inst.record.data,
        ctx.lang,
        ctx.zida.settings.timezone,
        names,
        depts,
        lambda file_id: f"{CONSOLE}/records/{instance_id}/files/{file_id}",
    )
    flow = [
        {
            "kind": op.kind,
            "label": ctx.t(f"op.{op.kind}"),
            "actor": names.get(op.actor_user_id or "", op.actor_user_id or ""),
            "node": _node_name(definition, op.node_id, ctx.lang),
            "users": ", ".join(names.get(u, u) for u in op.user_ids),
            "remark": op.remark,
            "at": moment(ctx, op.created_at),
        }
        for op in operations
    ]
    waiting = [
        {"who": names.get(t.assignee_user_id, t.assignee_user_id), "node": _node_name(definition, t.node_id, ctx.lang)}
        for t in tasks
        if t.status == "RUNNING"
    ]
    mine = [t for t in tasks if t.status == "RUNNING" and t.assignee_user_id == actor.user_id]
    may_withdraw = inst.status == "RUNNING" and inst.originator_user_id == actor.user_id and not inst.state.acted
    may_manage = inst.status == "RUNNING" and can_manage_approval(actor, originator=inst.originator_user_id)
    return render(
        ctx,
        "approval.html",
        status,
        inst=inst,
        form_title=form.title(ctx.lang),
        originator=names.get(inst.originator_user_id, inst.originator_user_id),
        created=moment(ctx, inst.created_at),
        data=data,
        flow=flow,
        waiting=waiting,
        task=mine[0] if mine else None,
        may_withdraw=may_withdraw,
        may_manage=may_manage,
        error=error,
        done=ctx.request.query_params.get("done") == "1",
        entered={"remark": "", "to_user": "", "to_node": "", "signers": "", "position": "before", **entered},
    )


@console_page()
async def approval(ctx: Ctx) -> Response:
    """An approval's page (GET) and the signed-in user's action on it (POST)."""
    instance_id = ctx.request.path_params["instance_id"]
    if ctx.request.method != "POST":
        return await _page(ctx, instance_id)
    form = ctx.form
    action = form.get("action")
    remark = form.get("remark").strip()
    entered = {
        "remark": remark,
        "to_user": form.get("to_user").strip(),
        "to_node": form.get("to_node"),
        "signers": form.get("signers").strip(),
        "position": form.get("position") or "before",
    }
    try:
        if action not in ACTIONS:
            raise InvalidArgument(f"action must be one of {', '.join(ACTIONS)}", reason="argument.invalid")
        if len(remark) > _MAX_REMARK:
            raise InvalidArgument(f"the comment has more than {_MAX_REMARK} characters", reason="argument.too_long")
        actor = await ctx.actor(await instance_app_pk(ctx.zida.db, ctx.corp.pk, instance_id))
        await _act(ctx, actor, instance_id, action, remark, entered)
    except ZidaError as exc:
        message = ctx.t(exc.reason) if exc.reason.startswith("approval.") else exc.message
        return await _page(ctx, instance_id, status=status_of(exc), error=message, **entered)
    return redirect(f"{CONSOLE}/approvals/{instance_id}?done=1")


def _task_id(raw: str) -> int:
    if not is_decimal(raw, 18):
        raise InvalidArgument("the task is not a task id", reason="argument.invalid", param="task")
    return int(raw)


async def _act(ctx: Ctx, actor: AppActor, instance_id: str, action: str, remark: str, entered: dict[str, Any]) -> None:
    db = ctx.zida.db
    if action == "withdraw":
        await actions.withdraw_instance(db, actor, instance_id, remark=remark)
        return
    if action == "urge":
        await actions.urge_instance(db, actor, instance_id, remark=remark)
        return
    if action == "terminate":
        await actions.terminate_instance(db, actor, instance_id, remark=remark)
        return
    task_id = _task_id(ctx.form.get("task"))
    if action == "agree":
        await actions.execute_task(db, actor, instance_id, task_id, agree=True, remark=remark)
    elif action == "refuse":
        if not remark:
            raise InvalidArgument("a comment is required to refuse", reason="approval.comment_required")
        await actions.execute_task(db, actor, instance_id, task_id, agree=False, remark=remark)
    elif action == "transfer":
        if not entered["to_user"]:
            raise InvalidArgument("name the user who takes the task over", reason="approval.user_required")
        await actions.redirect_task(db, actor, instance_id, task_id, entered["to_user"], remark=remark)
    elif action == "add_signer":
        signers = [u for u in (part.strip() for part in entered["signers"].replace("，", ",").split(",")) if u]
        if not signers:
            raise InvalidArgument("name at least one signer", reason="approval.signers_required")
        if len(signers) > _MAX_SIGNERS:
            raise InvalidArgument(f"at most {_MAX_SIGNERS} signers at once", reason="argument.invalid")
        await actions.add_signers(
            db, actor, instance_id, task_id, list(dict.fromkeys(signers)), position=entered["position"], remark=remark
        )
    else:
        to_node = START_ACTIVITY_ID if entered["to_node"] == "originator" else None
        await actions.return_task(db, actor, instance_id, task_id, to_node=to_node, remark=remark)
