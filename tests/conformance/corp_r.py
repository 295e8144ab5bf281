"""The records corp (``tests/fixtures/corp_records.yaml``) through the official SDK: shortcuts shared by the
issue-3 conformance tests (batches, advanced queries, v2)."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx

from tests.conformance.sdk import Sdk

R_ALL = ("keyR-all", "secret-r-all-0001")
APP_R1 = {"app_type": "APP_R1", "system_token": "ST-R1-SECRET-TOKEN"}
STOCK = "FORM-R1STOCK"
FLOW = "FORM-R1FLOW"


def marker(prefix: str = "SKU") -> str:
    """A value no other test uses, so searches see only this test's records."""
    return f"{prefix}-{secrets.token_hex(5)}"


def cond(key: str, operator: str, value: Any, kind: str = "TEXT", component: str = "TextField", **extra: Any) -> Any:
    """One element of the "数据管理" filter array (``searchCondition``)."""
    return {"key": key, "value": value, "type": kind, "operator": operator, "componentName": component, **extra}


class RecordsSdk(Sdk):
    """The SDK as a user of APP_R1 with the corp's full credential."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(endpoint)
        self.endpoint = endpoint

    def r(self, api: str, *path: str, user: str = "radmin", version: int = 1, **fields: Any) -> Any:
        """``api`` on APP_R1 as ``user``."""
        return self.call(api, *path, token=self.token(R_ALL), version=version, **APP_R1, user_id=user, **fields)

    def batch_save(self, rows: list[dict[str, Any]], form: str = STOCK, **flags: Any) -> list[str]:
        """batchSave → the new ids."""
        body = self.r(
            "batch_save_form_data", form_uuid=form, form_data_json_list=[json.dumps(r) for r in rows], **flags
        )
        return list(body.body.result)

    def stock(self, n: int, sku: str, **values: Any) -> list[str]:
        """``n`` fresh FORM-R1STOCK records ``{sku}-{i}`` (batches of 100, business rules off)."""
        ids: list[str] = []
        for start in range(0, n, 100):
            rows = [{"textField_sku": f"{sku}-{i}", **values} for i in range(start, min(n, start + 100))]
            ids += self.batch_save(rows, no_execute_expression=True)
        return ids

    def get_many(self, ids: list[str], form: str = STOCK) -> dict[str, dict[str, Any]]:
        """batchGet in chunks of 100: ``{formInstanceId: formData}`` of the ids that exist."""
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 100):
            got = self.r(
                "batch_get_form_data_by_id_list", form_uuid=form, form_instance_id_list=ids[start : start + 100]
            )
            out.update({g.form_instance_id: g.form_data for g in got.body.result})
        return out

    def count(self, sku: str, form: str = STOCK) -> int:
        """How many records' SKU contains ``sku``."""
        body = self.r(
            "search_form_data_second_generation",
            form_uuid=form,
            page_size=1,
            search_condition=json.dumps([cond("textField_sku", "like", sku)]),
        ).body
        return int(body.total_count)

    def raw(self, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
        """The same call on the wire, for keys the SDK models leave out (e.g. ``failures``)."""
        return httpx.request(
            method,
            f"http://{self.endpoint}{path}",
            headers={"x-acs-dingtalk-access-token": self.token(R_ALL)},
            json={"appType": APP_R1["app_type"], "systemToken": APP_R1["system_token"], "userId": "radmin", **body},
            timeout=60,
        )
