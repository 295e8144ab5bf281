"""WeDa query templates (SQL templates): ``POST /v1/sql/{envType}/{name}/run`` runs a template of the environment
(``zida.core.apps.templates``) with ``{"parameter": [{"key", "type", "value"}]}`` and answers
``{"Response": {"RequestId", "Data": {"total", "records", "latencyMillis"}}}``: the first ``limit`` records the
template's where tree matches (model field names, as ``/v1/model`` returns them), newest first unless it orders
them. Who acts and what he sees follow the data-model routes (``zida.dialects.weda.models``).
"""

from __future__ import annotations

import time
from collections.abc import Container
from typing import Any

from starlette.routing import Route

from zida.core import forms
from zida.core.apps.models import Form
from zida.core.apps.queries import find_model_form
from zida.core.apps.templates import QueryTemplate, bind, check_template, find_query_template, list_query_templates
from zida.core.errors import InvalidArgument, NotFound
from zida.core.principals import Scope
from zida.core.records.filters import Page, RecordQuery
from zida.db import Connection
from zida.dialects.weda.http import WedaCall, api_endpoint
from zida.dialects.weda.models import model_actor, order_of, parse_where, render_record

__all__ = ["check_against_model", "check_stored_templates", "routes"]


def _sample(kind: str) -> Any:
    return {"STRING": "x", "NUMBER": 1, "BOOLEAN": True, "ARRAY": ["x"]}[kind]


async def check_against_model(conn: Connection, corp_pk: int, template: QueryTemplate) -> None:
    """Validate a template against its model: the model exists, its where tree and order name real fields and
    operators (each placeholder filled with a sample of its type)."""
    check_template(template)
    form = await find_model_form(conn, corp_pk, template.model_name, cached=False)
    if form is None:
        raise InvalidArgument(
            f"template {template.name}: data model {template.model_name} does not exist",
            reason="template.invalid",
            param="model",
        )
    sample = [{"key": p.key, "value": _sample(p.type)} for p in template.parameters]
    try:
        parse_where(form, bind(template, sample))
        order_of(form, list(template.order_by) or None)
    except InvalidArgument as exc:
        raise InvalidArgument(f"template {template.name}: {exc.message}", reason="template.invalid") from None


async def check_stored_templates(conn: Connection, corp_pk: int, *, checked: Container[str] = ()) -> None:
    """Every stored template of the corp (but those ``checked`` already) still valid against its model: a change of
    a form (its model name, a field's alias or type) that would break one is refused, as a template that does not
    fit its model is when a bundle loads."""
    for template in await list_query_templates(conn, corp_pk):
        if template.name in checked:
            continue
        try:
            await check_against_model(conn, corp_pk, template)
        except InvalidArgument as exc:
            raise InvalidArgument(
                f"{exc.message} (a stored query template: change it in the bundle's weda.queryTemplates with the form)",
                reason="template.invalid",
            ) from None


async def _model(call: WedaCall, template: QueryTemplate) -> Form:
    form = await find_model_form(call.zida.db, call.principal.corp_pk, template.model_name)
    if form is None:
        raise NotFound(f"data model {template.model_name} does not exist", reason="model.not_found")
    call.named_like(form)
    return form


@api_endpoint(Scope.RECORDS_READ)
async def run_template(call: WedaCall) -> dict[str, Any]:
    """POST /v1/sql/{envType}/{name}/run."""
    started = time.monotonic()
    name = str(call.path["name"])
    template = await find_query_template(call.zida.db, call.principal.corp_pk, name)
    if template is None:
        raise NotFound(f"query template {name} does not exist in this environment", reason="template.not_found")
    where = bind(template, call.body.get("parameter", []))
    form = await _model(call, template)
    actor = await model_actor(call, form)
    query = RecordQuery(
        filter=parse_where(form, where),
        sort=order_of(form, list(template.order_by) or None),
        page=Page(1, template.limit),
        with_total=True,
    )
    result = await forms.search_records(call.zida.db, actor, form, query)
    return {
        "total": result.total,
        "records": [render_record(form, inst) for inst in result.items],
        "latencyMillis": str(round((time.monotonic() - started) * 1000)),
    }


def routes() -> list[Route]:
    """The query-template route."""
    return [Route("/v1/sql/{env}/{name}/run", run_template, methods=["POST"])]
