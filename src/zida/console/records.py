"""Forms and records: fill in a form (a process form's submission starts its approval), find a form's records
(searched on its indexed fields, sorted, paged, columns chosen: ``zida.console.search``) and export them (CSV or
Excel, streamed: ``zida.console.tables``), a record's page with its history and remarks, editing a record (only the
fields changed go to the core's update), files (upload, download), the people picker and the search behind an
association field's suggestions.

An export reads the search a batch of 200 records at a time (each batch one statement; time-ordered searches
continue from where the last batch ended through the core's page cursors), so a record added or changed while a
long export runs may appear in it, or not: the file is not one snapshot.

Which records a user finds, opens and which files they download is the access policy's
(``zida.core.access.policy``): the same searches and checks as the APIs, with the signed-in user as the actor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any
from urllib.parse import quote

import orjson
from starlette.responses import Response, StreamingResponse

from zida.console.common import PAGE_SIZE, Pager, moment, names_of, page_number
from zida.console.fields import (
    Display,
    associated_form,
    changed_values,
    display_values,
    entered_of,
    field_errors,
    label_of,
    message_of,
    parse_submission,
    referenced,
    submitted_pairs,
    widgets,
)
from zida.console.search import EXPORT_BATCH, XLSX_MEDIA_TYPE, export_cell, table_search
from zida.console.tables import Cell, CsvWriter, XlsxWriter
from zida.console.web import CONSOLE, Ctx, console_page, redirect, render, status_of
from zida.console.web import Form as WebForm
from zida.core import forms as form_records
from zida.core.access import policy
from zida.core.apps.models import Field, Form
from zida.core.apps.queries import find_form_definition
from zida.core.errors import InvalidArgument, NotFound, PermissionDenied, ZidaError
from zida.core.files import repository as file_repository
from zida.core.files.access import check_actor_may_read, uploader_of
from zida.core.files.actions import Upload, upload_file
from zida.core.files.models import FileLimits, is_file_id
from zida.core.files.storage import open_storage
from zida.core.org.queries import search_departments, search_users
from zida.core.org.repository import find_departments, list_departments
from zida.core.principals import AppActor
from zida.core.records import queries as record_queries
from zida.core.records.filters import Condition, Page, RecordQuery
from zida.core.records.history import OperationLog, list_operation_logs
from zida.core.records.remarks import MAX_REMARK_LENGTH, list_remarks, save_remark
from zida.core.workflow import store as workflow_store
from zida.core.workflow.actions import start_instance
from zida.dialects.files_http import check_body_length, file_response, multipart_file
from zida.ids import is_decimal

__all__ = [
    "add_remark",
    "associations",
    "departments",
    "download",
    "edit_record",
    "export_records",
    "fill",
    "find_records",
    "people",
    "record",
    "upload",
]

_MAX_LINKS = 50  # records one association field links to from the console (each is looked up)
_LISTED_DEPARTMENTS = 300  # a department picker lists this many at first (and the chosen ones); search finds the rest


async def _form(ctx: Ctx) -> tuple[Form, AppActor]:
    """The corp's form named in the path (current version) and the signed-in user in its app."""
    form_uuid = ctx.request.path_params["form_uuid"]
    definition = await find_form_definition(ctx.zida.db, ctx.corp.pk, form_uuid)
    if definition is None:
        raise NotFound(f"form {form_uuid} does not exist", reason="form.not_found")
    return definition.form, await ctx.actor(definition.form.app_pk)


def _field_of(form: Form, key: str) -> Field | None:
    return form.field(key.split(".", 1)[0])


@console_page()
async def fill(ctx: Ctx) -> Response:
    """A form to fill in (GET) and its submission (POST): a new record, or for a process form a new approval."""
    form, actor = await _form(ctx)
    db, tz = ctx.zida.db, ctx.zida.settings.timezone
    entered: dict[str, Any] = {}
    errors: dict[str, str] = {}
    problem: str | None = None
    status = 200
    if ctx.request.method == "POST":
        values, entered, errors = parse_submission(form, ctx.form, tz, ctx.lang)
        await _resolve_associations(ctx, form, values, errors)
        await _check_files(ctx, actor, form, values, entered, errors)
        checked = field_errors(form, {k: v for k, v in values.items() if k not in errors}, ctx.lang)
        errors = {**checked, **errors}
        if not errors:
            try:
                if form.form_type == "process":
                    inst = await start_instance(db, actor, form.form_uuid, values)
                    return redirect(f"{CONSOLE}/approvals/{inst.instance_id}")
                saved = await form_records.save_record(db, actor, form.form_uuid, values)
                return redirect(f"{CONSOLE}/records/{saved.instance_id}?saved=1")
            except InvalidArgument as exc:
                problem, status = _place_error(form, exc, errors, ctx.lang), 400
            except ZidaError as exc:
                problem, status = exc.message, status_of(exc)
        else:
            status = 400
    return await _form_page(ctx, form, entered, errors, problem, status)


async def _form_page(
    ctx: Ctx,
    form: Form,
    entered: dict[str, Any],
    errors: dict[str, str],
    problem: str | None,
    status: int,
    *,
    editing: Any = None,
) -> Response:
    """The fill-in page of ``form`` holding ``entered`` (``editing``: the record being edited)."""
    db = ctx.zida.db
    file_ids = [
        i
        for f in form.fields
        for i in (entered.get(f.field_id) or [])
        if f.component in ("AttachmentField", "ImageField", "DigitalSignatureField")
    ]
    files = await file_repository.find_files(db, ctx.corp.pk, [i for i in file_ids if is_file_id(i)])
    chosen = {
        str(i) for f in form.fields if f.component == "DepartmentSelectField" for i in entered.get(f.field_id) or []
    }
    chosen |= {
        str(i)
        for f in form.fields
        if f.component == "TableField"
        for row in entered.get(f.field_id) or []
        if isinstance(row, dict)
        for c in f.children
        if c.component == "DepartmentSelectField"
        for i in row.get(c.field_id) or []
    }
    every = await list_departments(db, ctx.corp.pk)
    departments = [
        (str(d.dept_id), d.name) for n, d in enumerate(every) if n < _LISTED_DEPARTMENTS or str(d.dept_id) in chosen
    ]
    return render(
        ctx,
        "fill.html",
        status,
        form=form,
        title=ctx.t("record.edit_title", title=editing.title) if editing is not None else form.title(ctx.lang),
        widgets=widgets(form, ctx.lang, entered, errors, {i: f.name for i, f in files.items()}),
        departments=departments,
        problem=problem or (ctx.t("form.fix_errors") if errors else None),
        action=f"{CONSOLE}/records/{editing.instance_id}/edit"
        if editing is not None
        else f"{CONSOLE}/forms/{form.form_uuid}/new",
        submit=ctx.t("record.save") if editing is not None else ctx.t("form.submit"),
    )


async def _resolve_associations(ctx: Ctx, form: Form, values: dict[str, Any], errors: dict[str, str]) -> None:
    """Check that each record an association field names is one the user may read (of the associated form, when
    the field names one), and store it as ``{instanceId, formUuid, title}``; the ids that are not: an error."""
    db = ctx.zida.db
    for f in form.fields:
        items = values.get(f.field_id)
        if f.component != "AssociationFormField" or not isinstance(items, list):
            continue
        linked, missing = [], []
        if len(items) > _MAX_LINKS:
            errors[f.field_id] = ctx.t("form.too_many_links", count=_MAX_LINKS)
            values.pop(f.field_id, None)
            continue
        for item in items:
            instance_id = str(item["instanceId"])
            try:
                actor = await _record_actor(ctx, instance_id)
                found = await record_queries.readable_record(db, actor, instance_id)
            except (NotFound, PermissionDenied, InvalidArgument):
                missing.append(instance_id)
                continue
            if associated_form(f) not in (None, found.form_uuid):
                missing.append(instance_id)
                continue
            linked.append({"instanceId": found.instance_id, "formUuid": found.form_uuid, "title": found.title})
        if missing:
            errors[f.field_id] = ctx.t("form.not_readable", ids=", ".join(missing)[:200])
            values.pop(f.field_id, None)
        else:
            values[f.field_id] = linked


_FILE_COMPONENTS = ("AttachmentField", "ImageField")


def _file_fields(fields: Iterable[Field], values: Mapping[str, Any]) -> dict[str, str]:
    """The Zida files that values name (attachments, images, signatures; in sub-table rows too), each with the
    top-level field naming it."""
    named: dict[str, str] = {}
    for f in fields:
        value = values.get(f.field_id)
        if f.component in _FILE_COMPONENTS and isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and isinstance(item.get("fileUuid"), str):
                    named.setdefault(item["fileUuid"], f.field_id)
        elif f.component == "DigitalSignatureField" and isinstance(value, str):
            named.setdefault(value, f.field_id)
        elif f.component == "TableField" and isinstance(value, list):
            for row in value:
                if isinstance(row, dict):
                    named.update({i: f.field_id for i in _file_fields(f.children, row) if i not in named})
    return named


def _forget_files(entered: Any, refused: set[str]) -> Any:
    """What was entered without the refused file ids (their names are not shown back either)."""
    if isinstance(entered, dict):
        return {k: _forget_files(v, refused) for k, v in entered.items()}
    if isinstance(entered, list):
        return [_forget_files(v, refused) for v in entered if not (isinstance(v, str) and v in refused)]
    return entered


async def _check_files(
    ctx: Ctx,
    actor: AppActor,
    form: Form,
    values: dict[str, Any],
    entered: dict[str, Any],
    errors: dict[str, str],
    *,
    kept: set[str] | None = None,
) -> None:
    """Each file a submission names must be one the user may read (``check_actor_may_read``): his own upload not
    yet attached, or a file of a record of the app he may read; ``kept``: those the edited record has already.
    Another file id (of a record he may not read: copied from a link, guessed) would attach it to his record and
    let him download it: refused, an error on its field, that field's value not sent."""
    named = _file_fields(form.fields, values)
    wanted = [i for i in named if i not in (kept or set())]
    if not wanted:
        return
    assert ctx.principal is not None
    db = ctx.zida.db
    found = await file_repository.find_files(db, ctx.corp.pk, [i for i in wanted if is_file_id(i)])
    refused: set[str] = set()
    for file_id in wanted:
        try:
            await check_actor_may_read(db, actor, ctx.principal, found.get(file_id), file_id)
        except (NotFound, PermissionDenied):
            refused.add(file_id)
    for field_id in dict.fromkeys(named[i] for i in wanted if i in refused):
        ids = ", ".join(i for i in wanted if i in refused and named[i] == field_id)
        errors[field_id] = ctx.t("form.file_not_readable", ids=ids[:200])
        values.pop(field_id, None)
    entered.update(_forget_files({k: v for k, v in entered.items() if k in errors}, refused))


@console_page()
async def associations(ctx: Ctx) -> Response:
    """Records an association field may link to whose title (or searched text field) contains ``q`` (at most 20,
    those the user may read: the core's search of the associated form)."""
    form, _ = await _form(ctx)
    f = form.field(ctx.request.path_params["field_id"])
    linked_uuid = associated_form(f) if f is not None and f.component == "AssociationFormField" else None
    if linked_uuid is None:
        raise NotFound("the field links to no form", reason="form.not_found")
    definition = await find_form_definition(ctx.zida.db, ctx.corp.pk, linked_uuid)
    word = ctx.request.query_params.get("q", "").strip()[:64]
    if definition is None or not word:
        return _json([])
    linked = definition.form
    actor = await ctx.actor(linked.app_pk)
    text_field = _search_field(linked)
    condition = Condition(text_field.field_id if text_field else "title", "like", word)
    query = RecordQuery(filter=condition, page=Page(1, 20), with_total=False)
    result = await form_records.search_records(ctx.zida.db, actor, linked, query)
    shown = [(r, r.data.get(text_field.field_id) if text_field else None) for r in result.items]
    return _json([{"id": r.instance_id, "name": f"{text} · {r.title}" if text else r.title} for r, text in shown])


def _search_field(form: Form) -> Field | None:
    """The text field a form's records are searched on: the first searchable text field, else the first one."""
    texts = [f for f in form.fields if f.component in ("TextField", "TextareaField")]
    return next((f for f in texts if f.searchable), texts[0] if texts else None)


async def _shown(
    ctx: Ctx, fields: list[Field], records: list[Any], record_url: str
) -> tuple[list[list[Display]], dict[str, str]]:
    users: set[str] = set()
    dept_ids: set[int] = set()
    for rec in records:
        more_users, more_depts = referenced(fields, rec.data)
        users |= more_users
        dept_ids |= more_depts
    names = await names_of(ctx, users | {r.originator_user_id for r in records})
    depts = {d: dept.name for d, dept in (await find_departments(ctx.zida.db, ctx.corp.pk, dept_ids)).items()}
    tz = ctx.zida.settings.timezone
    return [
        display_values(
            fields, rec.data, ctx.lang, tz, names, depts, lambda f, r=rec: f"{record_url}/{r.instance_id}/files/{f}"
        )
        for rec in records
    ], names


# A search that keeps more records than this says "10000+": counting every match of a broad search over a large form
# would take longer than the page (the core counts at most this many plus one).
COUNTED = 10_000


@console_page()
async def find_records(ctx: Ctx) -> Response:
    """A form's records the signed-in user may read: searched on its indexed fields, sorted, paged, with the
    columns chosen (``zida.console.search``)."""
    form, actor = await _form(ctx)
    number = page_number(ctx)
    table = table_search(ctx, form)
    query = RecordQuery(filter=table.filter, sort=(table.sort,), page=Page(number, PAGE_SIZE), count_limit=COUNTED + 1)
    result = await form_records.search_records(ctx.zida.db, actor, form, query)
    total, at_least = result.total or 0, result.total == COUNTED + 1
    if at_least and len(result.items) < PAGE_SIZE:  # a page past the counted ones that ends the list: exact
        total, at_least = (number - 1) * PAGE_SIZE + len(result.items), False
    elif at_least:
        total = COUNTED
    shown, names = await _shown(ctx, table.columns, result.items, f"{CONSOLE}/records")
    rows = [
        {"id": rec.instance_id, "cells": cells, "originator": names.get(rec.originator_user_id, rec.originator_user_id),
         "created": moment(ctx, rec.created_at), "status": rec.instance_status}
        for rec, cells in zip(result.items, shown, strict=True)
    ]  # fmt: skip
    records_url = f"{CONSOLE}/forms/{form.form_uuid}/records"
    return render(
        ctx,
        "records.html",
        form=form,
        title=form.title(ctx.lang),
        table=table,
        headers=[(f, label_of(f, ctx.lang), table.sort_link(records_url, f.field_id)) for f in table.columns],
        created_sort=table.sort_link(records_url, "created_at"),
        rows=rows,
        all_columns=[(f.field_id, label_of(f, ctx.lang)) for f in form.fields],
        search_fields=[(f, label_of(f, ctx.lang), table.words.get(f.field_id, "")) for f in table.searchable],
        pager=Pager(number, total, PAGE_SIZE, table.url(records_url) + ("&" if table.params else ""), at_least),
        export_query=table.query_string(),
    )


@console_page()
async def export_records(ctx: Ctx) -> Response:
    """The records of the current search (``format`` csv or xlsx), every field of the form, streamed a batch at a
    time (``zida.console.tables``)."""
    form, actor = await _form(ctx)
    kind = ctx.request.query_params.get("format", "csv")
    if kind not in ("csv", "xlsx"):
        raise InvalidArgument("format must be csv or xlsx", reason="argument.invalid", param="format")
    table = table_search(ctx, form)
    fields = list(form.fields)
    db = ctx.zida.db

    async def batch(number: int) -> list[Any]:
        query = RecordQuery(filter=table.filter, sort=(table.sort,), page=Page(number, EXPORT_BATCH), with_total=False)
        return (await form_records.search_records(db, actor, form, query)).items

    first = await batch(1)  # a wrong search is an error page, not a broken download
    headers = [label_of(f, ctx.lang) for f in fields] + [
        ctx.t("meta.instance_id"), ctx.t("col.originator"), ctx.t("col.created"), ctx.t("meta.modified")
    ] + ([ctx.t("col.status")] if form.form_type == "process" else [])  # fmt: skip
    writer: CsvWriter | XlsxWriter = CsvWriter() if kind == "csv" else XlsxWriter(form.title(ctx.lang))

    async def rows_of(records: list[Any]) -> list[list[Cell]]:
        shown, names = await _shown(ctx, fields, records, f"{CONSOLE}/records")
        out = []
        for rec, cells in zip(records, shown, strict=True):
            values = [export_cell(f, rec.data.get(f.field_id), d) for f, d in zip(fields, cells, strict=True)]
            values += [rec.instance_id, names.get(rec.originator_user_id, rec.originator_user_id),
                       moment(ctx, rec.created_at), moment(ctx, rec.modified_at)]  # fmt: skip
            if form.form_type == "process":
                values.append(ctx.t(f"status.{rec.instance_status}") if rec.instance_status else "")
            out.append(values)
        return out

    async def body() -> AsyncIterator[bytes]:
        records, number = first, 1
        yield writer.rows([headers])
        while records:
            yield writer.rows(await rows_of(records))
            if len(records) < EXPORT_BATCH:
                break
            number += 1
            records = await batch(number)
        yield writer.close()

    media = "text/csv; charset=utf-8" if kind == "csv" else XLSX_MEDIA_TYPE
    name = f"{form.title(ctx.lang)}.{kind}"
    disposition = f"attachment; filename=\"{form.form_uuid}.{kind}\"; filename*=UTF-8''{quote(name, safe='')}"
    return StreamingResponse(body(), media_type=media, headers={"content-disposition": disposition})


async def _record_actor(ctx: Ctx, instance_id: str) -> AppActor:
    return await ctx.actor(await record_queries.instance_app_pk(ctx.zida.db, ctx.corp.pk, instance_id))


async def _record_page(ctx: Ctx, instance_id: str, *, status: int = 200, error: str | None = None) -> Response:
    actor = await _record_actor(ctx, instance_id)
    db = ctx.zida.db
    rec, form = await record_queries.get_form_instance(db, actor, instance_id)
    logs = (await list_operation_logs(db, actor, form, [instance_id])).get(instance_id, [])
    remarks = (await list_remarks(db, actor, form, [instance_id])).get(instance_id, [])
    fields = {f.field_id: f for f in form.fields}
    changed = [(fields[k], c) for log in logs for k, c in log.changes.items() if k in fields and isinstance(c, dict)]
    users, dept_ids = referenced(form.fields, rec.data)
    for f, change in changed:
        for side in ("old", "new"):
            more_users, more_depts = referenced([f], {f.field_id: change.get(side)})
            users |= more_users
            dept_ids |= more_depts
    users |= {log.operator_user_id for log in logs} | {r.creator_user_id for r in remarks}
    users |= {r.reply_user_id for r in remarks if r.reply_user_id} | {u for r in remarks for u in r.at_user_ids}
    names = await names_of(ctx, users | {rec.originator_user_id})
    depts = {d: dept.name for d, dept in (await find_departments(db, ctx.corp.pk, dept_ids)).items()}
    tz = ctx.zida.settings.timezone

    def file_url(file_id: str) -> str:
        return f"{CONSOLE}/records/{instance_id}/files/{file_id}"

    def shown(f: Field, value: Any) -> Display:
        return display_values([f], {f.field_id: value}, ctx.lang, tz, names, depts, file_url)[0]

    def changes_of(log: OperationLog) -> list[dict[str, Any]]:
        if log.operation != "UPDATE":
            return []
        return [
            {"label": label_of(fields[k], ctx.lang), "old": shown(fields[k], c.get("old")),
             "new": shown(fields[k], c.get("new"))}
            for k, c in log.changes.items()
            if k in fields and isinstance(c, dict)
        ]  # fmt: skip

    history = [
        {
            "operation": ctx.t(f"history.{log.operation}"),
            "who": names.get(log.operator_user_id, log.operator_user_id),
            "at": moment(ctx, log.created_at),
            "changes": changes_of(log),
        }
        for log in reversed(logs)
    ]
    comments = [
        {
            "id": r.id,
            "who": names.get(r.creator_user_id, r.creator_user_id),
            "at": moment(ctx, r.created_at),
            "content": r.content,
            "reply_to": names.get(r.reply_user_id, r.reply_user_id) if r.reply_user_id else None,
            "mentions": [names.get(u, u) for u in r.at_user_ids],
        }
        for r in remarks
    ]
    data = display_values(form.fields, rec.data, ctx.lang, tz, names, depts, file_url)
    return render(
        ctx,
        "record.html",
        status,
        rec=rec,
        form=form,
        title=form.title(ctx.lang),
        data=data,
        originator=names.get(rec.originator_user_id, rec.originator_user_id),
        created=moment(ctx, rec.created_at),
        modified=moment(ctx, rec.modified_at),
        saved=ctx.request.query_params.get("saved") == "1",
        history=history,
        remarks=comments,
        error=error,
        entered=ctx.form.get("content"),
        max_remark=MAX_REMARK_LENGTH,
        may_edit=await _may_change(ctx, actor, rec),
    )


async def _may_change(ctx: Ctx, actor: AppActor, rec: Any) -> bool:
    """Whether the user may change the record's values: the access policy's rule (a process record's: its
    approval's, the one its ``update_instance`` applies — its originator or a holder of a running task while it
    runs, an app admin always)."""
    running: frozenset[str] = frozenset()
    if rec.process_instance_id is not None:
        held = await workflow_store.running_assignees_of_records(ctx.zida.db, ctx.corp.pk, [rec.instance_id])
        running = held.get(rec.instance_id, frozenset())
    status = rec.instance_status if rec.process_instance_id is not None else None
    return policy.can_change(
        actor, originator=rec.originator_user_id, running_assignees=running, approval_status=status
    )


@console_page()
async def edit_record(ctx: Ctx) -> Response:
    """Change a record's values (GET the form holding them, POST the change) through the core's update — a
    process record's through its approval's ``update_instance`` — with the API's rules of who may; only the fields
    changed are sent, so what the console cannot enter (a signature, a serial number) is kept. The history row is
    the core's."""
    instance_id = ctx.request.path_params["instance_id"]
    actor = await _record_actor(ctx, instance_id)
    db, tz = ctx.zida.db, ctx.zida.settings.timezone
    rec, form = await record_queries.get_form_instance(db, actor, instance_id)
    if not await _may_change(ctx, actor, rec):
        held = await workflow_store.running_assignees_of_records(db, ctx.corp.pk, [instance_id])
        policy.check_changeable(
            actor,
            record_id=instance_id,
            originator=rec.originator_user_id,
            running_assignees=held.get(instance_id, frozenset()),
            approval_status=rec.instance_status if rec.process_instance_id is not None else None,
        )
        raise PermissionDenied(f"user {ctx.user_id} may not change {instance_id}", reason="permission.denied")
    current = entered_of(form, rec.data, tz)
    if ctx.request.method != "POST":
        return await _form_page(ctx, form, current, {}, None, 200, editing=rec)
    values, entered, errors = parse_submission(form, ctx.form, tz, ctx.lang)
    # A stored value the console's inputs would not take (a country named otherwise through an API) is kept as it
    # is while its input is left alone.
    errors = {k: v for k, v in errors.items() if entered.get(k.split(".")[0]) != current.get(k.split(".")[0])}
    entered.update({k: v for k, v in current.items() if k not in entered or form.field(k) is None})
    for f in form.fields:
        if f.component == "SerialNumberField":
            entered[f.field_id] = current.get(f.field_id, "")
    before, _, _ = parse_submission(form, WebForm(submitted_pairs(form, current)), tz, ctx.lang)
    changes = changed_values(form, values, before)
    await _resolve_associations(ctx, form, changes, errors)
    await _check_files(ctx, actor, form, changes, entered, errors, kept=set(_file_fields(form.fields, rec.data)))
    checked = field_errors(form, {k: v for k, v in values.items() if k not in errors}, ctx.lang)
    errors = {**{k: v for k, v in checked.items() if _field_of(form, k) is not None and k.split(".")[0] in changes},
              **errors}  # fmt: skip
    problem: str | None = None
    status = 400
    if not errors:
        if not changes:
            return redirect(f"{CONSOLE}/records/{instance_id}")
        try:
            await form_records.update_record(db, actor, instance_id, changes)
            return redirect(f"{CONSOLE}/records/{instance_id}?saved=1")
        except InvalidArgument as exc:
            problem = _place_error(form, exc, errors, ctx.lang)
        except ZidaError as exc:
            problem, status = exc.message, status_of(exc)
    return await _form_page(ctx, form, entered, errors, problem, status, editing=rec)


def _place_error(form: Form, exc: InvalidArgument, errors: dict[str, str], lang: str) -> str | None:
    """The core's refusal of a form's values next to the field it names (in ``errors``), or else the page's problem
    (returned)."""
    key = exc.details.get("field")
    field = _field_of(form, key) if isinstance(key, str) else None
    if field is None or not isinstance(key, str):
        return exc.message
    errors[key] = message_of(exc, field, lang)
    return None


@console_page()
async def record(ctx: Ctx) -> Response:
    """One record the signed-in user may read: its values, who made it when, its approval if it has one, its
    history (who changed which value when) and its remarks."""
    return await _record_page(ctx, ctx.request.path_params["instance_id"])


def _reply_id(raw: str) -> int | None:
    if not raw:
        return None
    if not is_decimal(raw, 18):
        raise InvalidArgument("the comment replied to is not a comment id", reason="argument.invalid", param="reply")
    return int(raw)


@console_page()
async def add_remark(ctx: Ctx) -> Response:
    """Comment on a record the signed-in user may read (POST ``content``, optionally ``reply``: a comment id)."""
    instance_id = ctx.request.path_params["instance_id"]
    actor = await _record_actor(ctx, instance_id)
    try:
        await save_remark(
            ctx.zida.db, actor, instance_id, ctx.form.get("content"), reply_id=_reply_id(ctx.form.get("reply"))
        )
    except InvalidArgument as exc:
        message = ctx.t("record.remark_required") if exc.reason == "argument.missing" else exc.message
        return await _record_page(ctx, instance_id, status=400, error=message)
    return redirect(f"{CONSOLE}/records/{instance_id}#remarks")


@console_page()
async def download(ctx: Ctx) -> Response:
    """A file of a record, if the signed-in user may read a record of that app that references it."""
    instance_id, file_id = ctx.request.path_params["instance_id"], ctx.request.path_params["file_id"]
    actor = await _record_actor(ctx, instance_id)
    assert ctx.principal is not None
    found = await file_repository.find_file(ctx.zida.db, file_id) if is_file_id(file_id) else None
    file = await check_actor_may_read(ctx.zida.db, actor, ctx.principal, found, file_id)
    return file_response(ctx.request, ctx.zida, file, ctx.request.query_params.get("type", "download"))


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


@console_page(form=False)
async def upload(ctx: Ctx) -> Response:
    """Store a file chosen in a form (multipart, field ``file``; CSRF token in ``x-csrf-token``): its id, name
    and size, or ``{"error"}``. The checks are the files core's (size, quota, allowed types, names)."""
    assert ctx.principal is not None
    limits = FileLimits.of(ctx.zida.settings)
    try:
        check_body_length(ctx.request, limits)
        name, chunks = await multipart_file(ctx.request, ("file",))
        stored = await upload_file(
            ctx.zida.db,
            open_storage(ctx.zida.settings),
            limits,
            corp_pk=ctx.corp.pk,
            uploader=uploader_of(ctx.principal),
            upload=Upload(name=name, chunks=chunks),
        )
    except ZidaError as exc:
        return _json({"error": exc.message}, status_of(exc))
    return _json({"fileId": stored.file_id, "name": stored.name, "size": stored.size}, 201)


@console_page()
async def departments(ctx: Ctx) -> Response:
    """The corp's departments whose name contains ``q`` (at most 20), for the department picker."""
    word = ctx.request.query_params.get("q", "").strip()[:64]
    if not word:
        return _json([])
    _, dept_ids = await search_departments(ctx.zida.db, ctx.corp.pk, word, offset=0, size=20)
    found = await find_departments(ctx.zida.db, ctx.corp.pk, dept_ids)
    return _json([{"id": d, "name": found[d].name} for d in dept_ids if d in found])


@console_page()
async def people(ctx: Ctx) -> Response:
    """Active users of the corp whose name contains ``q`` (at most 20), for the employee picker."""
    word = ctx.request.query_params.get("q", "").strip()[:64]
    if not word:
        return _json([])
    _, user_ids = await search_users(ctx.zida.db, ctx.corp.pk, word, offset=0, size=20)
    names = await names_of(ctx, user_ids)
    return _json([{"id": u, "name": names.get(u, u)} for u in user_ids])
