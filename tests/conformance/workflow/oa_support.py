"""The official workflow_1_0 client against a live Zida, over the corp_oa bundle (OA workflow conformance tests)."""

from __future__ import annotations

import json
from typing import Any

from alibabacloud_dingtalk.workflow_1_0 import models as wf
from alibabacloud_dingtalk.workflow_1_0.client import Client as WorkflowClient
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_util import models as util_models

from tests.conformance.sdk import Sdk
from tests.conformance.workflow.conftest import run
from tests.conftest import ServerProcess

OA_ALL = ("oa-all", "oa-secret-all-0001")
OA_WORKFLOW = ("oa-workflow", "oa-secret-workflow-1")
OA_FORMS = ("oa-forms", "oa-secret-forms-001")
OA_INSTANCE_READ = ("oa-instance-read", "oa-secret-iread-001")
OA_APP = {"app_type": "APP_OA1", "system_token": "ST-OA1-SECRET"}
LEAVE = "TPROC--OA-LEAVE"
PICK = "TPROC--OA-PICK"


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def components(**values: str) -> list[wf.StartProcessInstanceRequestFormComponentValues]:
    """``formComponentValues`` from label=value pairs."""
    return [wf.StartProcessInstanceRequestFormComponentValues(name=k, value=v) for k, v in values.items()]


class Oa:
    """workflow_1_0 and yida_1_0 clients for the corp_oa bundle."""

    def __init__(self, server: ServerProcess, url: str) -> None:
        config = open_api_models.Config(protocol="http")
        self.client = WorkflowClient(config)
        self.client._endpoint = server.endpoint
        self.sdk = Sdk(server.endpoint)
        self.url = url

    def call(
        self, api: str, credential: tuple[str, str] | None = OA_ALL, token: str | None = None, **fields: Any
    ) -> Any:
        """``client.<api>_with_options(<Api>Request(**fields), <Api>Headers(token), RuntimeOptions())`` → body."""
        model = _camel(api)
        request = getattr(wf, model + "Request")(**fields)
        if token is None and credential is not None:
            token = self.sdk.token(credential)
        headers = getattr(wf, model + "Headers")(x_acs_dingtalk_access_token=token)
        return getattr(self.client, api + "_with_options")(request, headers, util_models.RuntimeOptions()).body

    def start(self, originator: str = "li", code: str = LEAVE, **fields: Any) -> str:
        """start_process_instance → the instance id (a leave of 2 days unless values are given)."""
        fields.setdefault("form_component_values", components(事由="家事", 天数="2"))
        body = self.call("start_process_instance", process_code=code, originator_user_id=originator, **fields)
        instance_id: str = body.instance_id
        assert instance_id.startswith("FINST-")
        return instance_id

    def get(self, instance_id: str, credential: tuple[str, str] = OA_ALL) -> Any:
        """get_process_instance → ``result``."""
        return self.call("get_process_instance", credential, process_instance_id=instance_id).result

    def running(self, instance_id: str) -> dict[str, int]:
        """The instance's running tasks: assignee → taskId."""
        return {t.user_id: t.task_id for t in self.get(instance_id).tasks if t.status == "RUNNING"}

    def execute(self, instance_id: str, user: str, result: str = "agree", remark: str = "ok") -> Any:
        """execute_process_instance on ``user``'s running task."""
        task_id = self.running(instance_id)[user]
        return self.call(
            "execute_process_instance",
            process_instance_id=instance_id,
            task_id=task_id,
            actioner_user_id=user,
            result=result,
            remark=remark,
        )

    def yida(self, api: str, user: str, *path: str, **fields: Any) -> Any:
        """A yida_1_0 call in APP_OA1 as ``user`` (``path``: the SDK's positional path parameters)."""
        return self.sdk.call(api, *path, token=self.sdk.token(OA_ALL), user_id=user, **OA_APP, **fields)

    def counts(self) -> tuple[int, int, int, int]:
        """(records, instances, tasks, outbox events) of corpOa: what a refused call must leave unchanged."""
        row = run(
            self.url,
            "SELECT (SELECT count(*) FROM form_instance fi JOIN corp c ON c.id = fi.corp_pk WHERE c.corp_id = 'corpOa')"
            " AS r, (SELECT count(*) FROM process_instance pi JOIN corp c ON c.id = pi.corp_pk"
            " WHERE c.corp_id = 'corpOa') AS p, (SELECT count(*) FROM task t JOIN corp c ON c.id = t.corp_pk"
            " WHERE c.corp_id = 'corpOa') AS t, (SELECT count(*) FROM outbox_event e JOIN corp c ON c.id = e.corp_pk"
            " WHERE c.corp_id = 'corpOa') AS e",
        )[0]
        return int(row["r"]), int(row["p"]), int(row["t"]), int(row["e"])

    def instance_state(self, instance_id: str) -> str:
        """The stored state JSON of an instance."""
        row = run(self.url, "SELECT state FROM process_instance WHERE instance_id = :i", {"i": instance_id})[0]
        state = row["state"]
        return state if isinstance(state, str) else json.dumps(state)
