"""The OA workflow API's shapes (workflow_1_0): ``formComponentValues`` both ways and the instance detail (§6.2, §6.3).

Form components are the form's fields: a request names one by its ``label`` (``name``; Chinese or English label),
or by its ``id`` (the fieldId). Each Yida component answers as the closest OA ``componentType``:

============================  ======================  ==================================================
Yida component                OA componentType        value (a string, as §6.2 writes it)
============================  ======================  ==================================================
TextField, SerialNumberField  TextField               the text
TextareaField, EditorField    TextareaField           the text
NumberField, RateField        NumberField             ``"100"``
SelectField, RadioField       DDSelectField           the option (its value or label)
CheckboxField, MultiSelect…   DDMultiSelectField      ``["a","b"]``
DateField                     DDDateField             ``2021-08-17`` or ``2021-08-17 10:00`` (ZIDA_TIMEZONE)
CascadeDateField              DDDateRangeField        ``["2019-02-19","2019-02-25"]``
EmployeeField                 InnerContactField       ``["userId1","userId2"]`` (also ``u1,u2``)
DepartmentSelectField         DepartmentField         ``1,2`` (also a JSON array)
TableField                    TableField              ``[[{"name":"<column label>","value":"x"}, …], …]``
AttachmentField               DDAttachment            ``[{"spaceId","fileName","fileSize","fileType","fileId"}]``
ImageField                    DDPhotoField            ``["http://url1", …]``
AddressField                  AddressField            ``北京,北京市,东城区``
AssociationFormField          RelateField             ``["instanceId1", …]``
others                        their Yida name         JSON text for lists and objects, else the text
============================  ======================  ==================================================

Choices where the platform is silent: a DDAttachment item whose ``fileId`` is a file uploaded to Zida (the
``media_id`` of ``/media/upload``, ``FILE-…``) attaches that file (read back with ``spaceId`` ``zida``); another is
kept with its DingTalk keys and a ``url`` ``dingtalk-space://<spaceId>/<fileId>`` (Zida does not host DingTalk's
drive); a date range's ``name`` may be the
field's label or §6.2's JSON label pair containing it; ``-1`` as a department means the root department (1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from zida.core.apps.models import Field, Form
from zida.core.errors import InvalidArgument
from zida.core.files.models import is_file_id
from zida.core.records.remarks import Remark
from zida.core.records.values import brief
from zida.core.workflow.definition import ApproverNode, CcNode, ProcessDefinition
from zida.core.workflow.models import OperationRecord, ProcessInstance, TaskView
from zida.core.workflow.own_flow import OWN_APPROVER_PREFIX
from zida.dialects.dingtalk.shapes import Directory, gmt
from zida.ids import is_decimal

__all__ = [
    "COMPONENT_TYPES",
    "MAX_COMPONENT_VALUES",
    "component_type",
    "form_values",
    "instance_detail",
    "instance_page_item",
    "render_values",
]

MAX_COMPONENT_VALUES = 150
MAX_VALUE_CHARS = 65_535

COMPONENT_TYPES: dict[str, str] = {
    "TextField": "TextField",
    "SerialNumberField": "TextField",
    "TextareaField": "TextareaField",
    "EditorField": "TextareaField",
    "NumberField": "NumberField",
    "RateField": "NumberField",
    "SelectField": "DDSelectField",
    "RadioField": "DDSelectField",
    "CheckboxField": "DDMultiSelectField",
    "MultiSelectField": "DDMultiSelectField",
    "DateField": "DDDateField",
    "CascadeDateField": "DDDateRangeField",
    "EmployeeField": "InnerContactField",
    "DepartmentSelectField": "DepartmentField",
    "TableField": "TableField",
    "AttachmentField": "DDAttachment",
    "ImageField": "DDPhotoField",
    "AddressField": "AddressField",
    "AssociationFormField": "RelateField",
}

ROOT_DEPARTMENT = "1"
_DATE_FORMATS = (("%Y-%m-%d %H:%M:%S", False), ("%Y-%m-%d %H:%M", False), ("%Y-%m-%d", True))


def component_type(f: Field) -> str:
    """The OA componentType closest to a Yida component."""
    return COMPONENT_TYPES.get(f.component, f.component)


def _converter_error(name: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"{name}（{why}）", reason="oa.form_converter", component=name)


# ---------------------------------------------------------------------------------------------- request


def _json(name: str, text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise _converter_error(name, f"expects JSON text, got {brief(text)}") from None


def _string_items(name: str, text: str, *, commas: bool) -> list[str]:
    stripped = text.strip()
    if stripped.startswith("["):
        items = _json(name, stripped)
        if not isinstance(items, list) or not all(isinstance(i, str | int) and not isinstance(i, bool) for i in items):
            raise _converter_error(name, f"expects a JSON array of strings, got {brief(text)}")
        return [str(i) for i in items]
    if not stripped:
        return []
    return [p.strip() for p in stripped.split(",") if p.strip()] if commas else [stripped]


def _date_ms(name: str, text: str, zone: str) -> int:
    stripped = text.strip()
    if is_decimal(stripped):
        return int(stripped)  # the records core checks its range
    for fmt, _ in _DATE_FORMATS:
        try:
            moment = datetime.strptime(stripped, fmt).replace(tzinfo=ZoneInfo(zone))
        except ValueError:
            continue
        return int(moment.timestamp() * 1000)
    raise _converter_error(name, f"expects a date like 2021-08-17 or 2021-08-17 10:00, got {brief(text)}")


def _attachments(name: str, text: str) -> list[dict[str, Any]]:
    items = _json(name, text) if text.strip() else []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise _converter_error(name, "expects a JSON array of attachment objects")
    out = []
    for item in items:
        # DDAttachment items are flat: every value a string (a number for fileSize), never an object or a list.
        if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in item.values()):
            raise _converter_error(name, "each attachment's values are texts (fileSize a number)")
        if item.get("url") or item.get("downloadUrl"):
            if not isinstance(item.get("url") or item.get("downloadUrl"), str):
                raise _converter_error(name, "an attachment's url is a text")
            out.append(dict(item))
            continue
        if is_file_id(item.get("fileId")):  # a file uploaded to Zida (its media_id): attached by the records core
            out.append({"name": str(item.get("fileName") or item["fileId"]), "fileUuid": item["fileId"]})
            continue
        if not item.get("fileId") or not item.get("spaceId"):
            raise _converter_error(name, "each attachment needs a spaceId and a fileId")
        attachment = {k: str(item[k]) for k in ("spaceId", "fileId", "fileName", "fileSize", "fileType") if k in item}
        attachment["name"] = str(item.get("fileName") or item["fileId"])
        attachment["url"] = f"dingtalk-space://{item['spaceId']}/{item['fileId']}"
        out.append(attachment)
    return out


def _value(f: Field, name: str, text: str, zone: str) -> Any:
    """One component's §6.2 string as the value Zida stores (the records core then validates it)."""
    comp = f.component
    if comp in ("CheckboxField", "MultiSelectField", "CitySelectField", "CascadeSelectField"):
        return _string_items(name, text, commas=False)
    if comp == "EmployeeField":
        return _string_items(name, text, commas=True)
    if comp == "DepartmentSelectField":
        return [ROOT_DEPARTMENT if d == "-1" else d for d in _string_items(name, text, commas=True)]
    if comp == "DateField":
        return _date_ms(name, text, zone) if text.strip() else None
    if comp == "CascadeDateField":
        pair = _string_items(name, text, commas=False)
        if len(pair) != 2:
            raise _converter_error(name, 'expects ["start date","end date"]')
        return [_date_ms(name, d, zone) for d in pair]
    if comp == "TableField":
        return _table_rows(f, name, text, zone)
    if comp == "AttachmentField":
        return _attachments(name, text)
    if comp == "ImageField":
        return [{"url": u, "previewUrl": u, "downloadUrl": u} for u in _string_items(name, text, commas=False)]
    if comp == "AssociationFormField":
        return [{"instanceId": i} for i in _string_items(name, text, commas=False)]
    if comp == "CountrySelectField":
        return _string_items(name, text, commas=False)
    return text


def _table_rows(f: Field, name: str, text: str, zone: str) -> list[dict[str, Any]]:
    rows = _json(name, text) if text.strip() else []
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise _converter_error(name, 'expects rows of cells: [[{"name": "<column>", "value": "…"}]]')
    out = []
    for row in rows:
        values: dict[str, Any] = {}
        for cell in row:
            child, cell_name, cell_text = _component(f.children, cell, f"{name}.")
            values[child.field_id] = _value(child, cell_name, cell_text, zone)
        out.append(values)
    return out


def _matches(f: Field, name: str) -> bool:
    if name in (f.label_zh, f.label_en):
        return True
    if f.component == "CascadeDateField" and name.startswith("["):
        try:
            labels = orjson.loads(name)
        except orjson.JSONDecodeError:
            return False
        return isinstance(labels, list) and any(label in (f.label_zh, f.label_en) for label in labels)
    return False


def _component(fields: Sequence[Field], item: Any, prefix: str = "") -> tuple[Field, str, str]:
    """The field a component value names, the name to quote in errors, and its value text."""
    if not isinstance(item, Mapping):
        raise _converter_error(prefix or "formComponentValues", f"expects {{name, value}} objects, got {brief(item)}")
    name, value, field_id = item.get("name"), item.get("value"), item.get("id")
    if not isinstance(name, str) or not name:
        raise _converter_error(prefix or "formComponentValues", "every component value needs a name")
    shown = prefix + name
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise _converter_error(shown, "value must be a string (JSON values are sent as JSON text)")
    if len(value) > MAX_VALUE_CHARS:
        raise _converter_error(shown, f"value has {len(value)} characters; at most {MAX_VALUE_CHARS}")
    found = next((f for f in fields if isinstance(field_id, str) and field_id and f.field_id == field_id), None)
    if found is None:
        found = next((f for f in fields if _matches(f, name)), None)
    if found is None:
        raise _converter_error(shown, "the form has no component with this label")
    return found, shown, value


def form_values(form: Form, items: Any, zone: str) -> dict[str, Any]:
    """``formComponentValues`` → the record's values ``{fieldId: value}`` (``formConverterError`` naming the
    component on an unknown name or a malformed value)."""
    if items is None:
        return {}
    if not isinstance(items, list):
        raise InvalidArgument("formComponentValues must be an array of {name, value}", reason="oa.invalid_parameter")
    if len(items) > MAX_COMPONENT_VALUES:
        raise InvalidArgument(
            f"at most {MAX_COMPONENT_VALUES} formComponentValues, got {len(items)}", reason="oa.invalid_parameter"
        )
    values: dict[str, Any] = {}
    for item in items:
        f, name, text = _component(form.fields, item)
        if f.component == "SerialNumberField":
            raise _converter_error(name, "a serial number is generated, not given")
        values[f.field_id] = _value(f, name, text, zone)
    return values


# --------------------------------------------------------------------------------------------- response


def _date_text(ms: int, zone: str) -> str:
    """A stored date as §6.2 writes it; a moment no calendar date holds (a year past 9999 or before 1 in that zone,
    which the records core may store) as its milliseconds."""
    try:
        moment = datetime.fromtimestamp(ms / 1000, ZoneInfo(zone))
    except (OverflowError, ValueError, OSError):
        return str(ms)
    if (moment.hour, moment.minute, moment.second) == (0, 0, 0):
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M")


def _attachment_item(item: dict[str, Any]) -> dict[str, Any]:
    """A stored attachment as a DDAttachment item: a Zida file's ``fileId`` is its id (``spaceId`` ``zida``)."""
    if "fileUuid" in item:
        return {
            "spaceId": "zida",
            "fileId": item["fileUuid"],
            "fileName": str(item.get("name", "")),
            "fileSize": str(item.get("size", "")),
            "fileType": str(item.get("ext", "")),
        }
    if "fileId" in item:
        return {k: v for k, v in item.items() if k in ("spaceId", "fileId", "fileName", "fileSize", "fileType")}
    return {"fileName": item.get("name", "")}


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _option_label(f: Field, value: Any) -> str:
    opt = f.option(value) if isinstance(value, str) else None
    return opt.label_zh if opt is not None else str(value)


def _text(f: Field, value: Any, directory: Directory, zone: str) -> tuple[str, str]:
    """(value, extValue) of one stored value."""
    comp = f.component
    if value is None:
        return "", ""
    if comp in ("SelectField", "RadioField"):
        return _option_label(f, value), ""
    if comp in ("CheckboxField", "MultiSelectField"):
        return _dumps([_option_label(f, v) for v in value]), ""
    if comp == "DateField" and isinstance(value, int | float):
        return _date_text(int(value), zone), ""
    if comp == "CascadeDateField" and isinstance(value, list):
        return _dumps([_date_text(int(v), zone) if isinstance(v, int | float) else "" for v in value]), ""
    if comp == "EmployeeField" and isinstance(value, list):
        ext = [{"emplId": u, "name": directory.user_name(u)} for u in value]
        return _dumps(value), _dumps(ext)
    if comp == "DepartmentSelectField" and isinstance(value, list):
        ext = [{"id": d, "name": directory.dept_name(str(d))} for d in value]
        return ",".join(str(d) for d in value), _dumps(ext)
    if comp == "TableField" and isinstance(value, list):
        rows = []
        for row in value:
            cells = []
            for child in f.children:
                if isinstance(row, dict) and child.field_id in row:
                    cell, _ = _text(child, row[child.field_id], directory, zone)
                    cells.append({"name": child.label_zh, "value": cell})
            rows.append(cells)
        return _dumps(rows), ""
    if comp == "AttachmentField" and isinstance(value, list):
        return _dumps([_attachment_item(item) for item in value if isinstance(item, dict)]), ""
    if comp == "ImageField" and isinstance(value, list):
        return _dumps([i.get("url") or i.get("downloadUrl") or "" for i in value if isinstance(i, dict)]), ""
    if comp == "AssociationFormField" and isinstance(value, list):
        return _dumps([i.get("instanceId", "") for i in value if isinstance(i, dict)]), ""
    if comp == "AddressField" and isinstance(value, dict):
        return str(value.get("address", "")), _dumps(value)
    if isinstance(value, list | dict):
        return _dumps(value), ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value)), ""
    return str(value), ""


def render_values(
    fields: Iterable[Field], data: Mapping[str, Any], directory: Directory, zone: str
) -> list[dict[str, Any]]:
    """A record's values as ``formComponentValues`` (every field of the form, in schema order)."""
    out = []
    for f in fields:
        value, ext = _text(f, data.get(f.field_id), directory, zone)
        out.append(
            {
                "id": f.field_id,
                "name": f.label_zh,
                "value": value,
                "extValue": ext,
                "componentType": component_type(f),
                "bizAlias": f.alias or "",
            }
        )
    return out


# Operation record kind → (type, result); Zida's own steps (skip, urge, fallback to admins, error) are left out.
_OPERATION_TYPES: dict[str, tuple[str, str]] = {
    "start": ("START_PROCESS_INSTANCE", "NONE"),
    "resubmit": ("START_PROCESS_INSTANCE", "NONE"),
    "agree": ("EXECUTE_TASK_NORMAL", "AGREE"),
    "disagree": ("EXECUTE_TASK_NORMAL", "REFUSE"),
    "redirect": ("REDIRECT_TASK", "NONE"),
    "add_signer_before": ("APPEND_TASK_BEFORE", "NONE"),
    "add_signer_after": ("APPEND_TASK_AFTER", "NONE"),
    "return": ("REDIRECT_PROCESS", "NONE"),
    "withdraw": ("TERMINATE_PROCESS_INSTANCE", "NONE"),
    "terminate": ("TERMINATE_PROCESS_INSTANCE", "NONE"),
    "cc": ("PROCESS_CC", "NONE"),
    "finish": ("FINISH_PROCESS_INSTANCE", "NONE"),
}
_TASK_RESULTS = {"agree": "AGREE", "disagree": "REFUSE", "redirect": "REDIRECTED", "return": "REDIRECTED"}
# The instance's status as §6.3 names it (an instance the engine stopped in error shows as TERMINATED).
_STATUSES = {"RUNNING": "RUNNING", "COMPLETED": "COMPLETED", "TERMINATED": "TERMINATED", "ERROR": "TERMINATED"}
_RESULTS = {"agree": "agree", "disagree": "refuse"}


def _node_name(definition: ProcessDefinition, node_id: str | None) -> str:
    if node_id is None or not definition.has_node(node_id):
        return "发起" if node_id else ""
    node = definition.node(node_id)
    return node.name if isinstance(node, ApproverNode | CcNode) else (node.name or node_id)


def _operations(
    definition: ProcessDefinition, history: Sequence[OperationRecord], remarks: Sequence[Remark]
) -> list[tuple[int, str, str, str, str, str, str, list[str]]]:
    """(time, user, type, result, remark, activity, activity name, CC users) in time order."""
    rows = []
    for record in history:
        kind = _OPERATION_TYPES.get(record.kind)
        if kind is None:
            continue
        op_type, result = kind
        if record.kind in ("agree", "disagree") and record.on_behalf:
            op_type = "EXECUTE_TASK_AGENT"
        node = record.node_id or ""
        cc = list(record.user_ids) if record.kind == "cc" else []
        rows.append(
            (
                record.created_at,
                record.actor_user_id or "",
                op_type,
                result,
                record.remark,
                node,
                _node_name(definition, record.node_id),
                cc,
            )
        )
    for remark in remarks:
        rows.append((remark.created_at, remark.creator_user_id, "ADD_REMARK", "NONE", remark.content, "", "评论", []))
    rows.sort(key=lambda r: r[0])
    return rows


def _approver_ids(inst: ProcessInstance) -> list[str]:
    """Approvers named when the instance started (an own flow's approver steps): not the approvers of the form's
    process, which an own flow naming only CC users keeps (``zida.core.workflow.own_flow``)."""
    if not inst.state.flow:
        return []
    users: list[str] = []
    for node in inst.state.flow:
        body = node.get("approver")
        if isinstance(body, dict) and str(body.get("id", "")).startswith(OWN_APPROVER_PREFIX):
            users.extend(body.get("who", {}).get("users", []))
    return list(dict.fromkeys(users))


def _cc_ids(history: Sequence[OperationRecord]) -> list[str]:
    return list(dict.fromkeys(u for r in history if r.kind == "cc" for u in r.user_ids))


def instance_detail(
    inst: ProcessInstance,
    definition: ProcessDefinition,
    fields: Sequence[Field],
    history: Sequence[OperationRecord],
    tasks: Sequence[TaskView],
    remarks: Sequence[Remark],
    directory: Directory,
    zone: str,
) -> dict[str, Any]:
    """An instance as ``GET /v1.0/workflow/processInstances`` returns it (§6.3)."""
    dept = inst.department_id
    originator = directory.users.get(inst.originator_user_id)
    if dept is None and originator is not None and originator.dept_ids:
        dept = originator.dept_ids[0]
    return {
        "title": inst.title,
        "businessId": inst.record.serial_no or inst.instance_id,
        "bizData": "",
        "createTime": gmt(inst.created_at),
        "finishTime": gmt(inst.finished_at) if inst.finished_at else "",
        "originatorUserId": inst.originator_user_id,
        "originatorDeptId": "-1" if dept is None or dept == 1 else str(dept),
        "originatorDeptName": directory.dept_name(str(dept)) if dept is not None else "",
        "status": _STATUSES.get(inst.status, inst.status),
        "result": _RESULTS.get(inst.result or "", ""),
        "approverUserIds": _approver_ids(inst),
        "ccUserIds": _cc_ids(history),
        "bizAction": "NONE",
        "attachedProcessInstanceIds": [],
        "mainProcessInstanceId": "",
        "formComponentValues": render_values(fields, inst.record.data, directory, zone),
        "operationRecords": [
            {
                "userId": user,
                "date": gmt(at),
                "type": op_type,
                "result": result,
                "remark": remark,
                "attachments": [],
                "ccUserIds": cc,
                "activityId": activity,
                "showName": name,
                "images": [],
            }
            for at, user, op_type, result, remark, activity, name, cc in _operations(definition, history, remarks)
        ],
        "tasks": [
            {
                "taskId": t.task_id,
                "userId": t.assignee_user_id,
                "status": t.status,
                "result": _TASK_RESULTS.get(t.result or "", "NONE"),
                "createTime": gmt(t.created_at),
                "finishTime": gmt(t.finished_at) if t.finished_at else "",
                "mobileUrl": "",
                "pcUrl": "",
                "processInstanceId": inst.instance_id,
                "activityId": t.node_id,
                "taskGroupName": "",
            }
            for t in tasks
        ],
    }


def instance_page_item(
    inst: ProcessInstance,
    definition: ProcessDefinition,
    fields: Sequence[Field],
    history: Sequence[OperationRecord],
    tasks: Sequence[TaskView],
    remarks: Sequence[Remark],
    directory: Directory,
    zone: str,
) -> dict[str, Any]:
    """An instance as ``GET /v1.0/workflow/processes/pages/instances`` lists it (times in epoch ms)."""
    detail = instance_detail(inst, definition, fields, history, tasks, remarks, directory, zone)
    return {
        "processInstanceId": inst.instance_id,
        "title": inst.title,
        "createTime": inst.created_at,
        "createTimeInMills": inst.created_at,
        "finishTime": inst.finished_at or 0,
        "finishTimeInMills": inst.finished_at or 0,
        "originatorUserid": inst.originator_user_id,
        "originatorDeptId": detail["originatorDeptId"],
        "status": detail["status"],
        "result": detail["result"],
        "businessId": detail["businessId"],
        "attachedProcessInstanceIds": "",
        "mainProcessInstanceId": "",
        "formComponentValues": [
            {k: v[k] for k in ("id", "name", "value", "extValue")} for v in detail["formComponentValues"]
        ],
        "operationRecords": [
            {
                "userId": user,
                "timestamp": at,
                "operationType": op_type,
                "result": result,
                "remark": remark,
                "attachments": [],
            }
            for at, user, op_type, result, remark, _, _, _ in _operations(definition, history, remarks)
        ],
        "tasks": [
            {
                "taskId": t.task_id,
                "userId": t.assignee_user_id,
                "status": t.status,
                "result": _TASK_RESULTS.get(t.result or "", "NONE"),
                "activityId": t.node_id,
                "createTimestamp": t.created_at,
                "finishTimestamp": t.finished_at or 0,
            }
            for t in tasks
        ],
    }
