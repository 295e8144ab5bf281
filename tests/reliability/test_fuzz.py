"""Schemathesis against the live server's ``/openapi.json``: every operation of every dialect, with a valid token of
the dialect's kind (DingTalk header, oapi ``access_token``, WeDa and admin bearer tokens), generated bodies, path
values and queries. No answer may be a 5xx, and every answer must be one the document declares: its status
(``200`` or ``default``), its content type, and its body against the declared schema (the dialect's error body).

``RELIABILITY_FUZZ_DATABASE`` (``sqlite``, the default, or ``postgresql``) picks the server's database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks

from tests.conftest import ServerProcess
from tests.reliability.conftest import SIZE, fresh_url

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(3600)]

DATABASE = os.environ.get("RELIABILITY_FUZZ_DATABASE", "sqlite")
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
SENT: dict[str, int] = {}
STATUSES: dict[int, int] = {}
# Names of things the fixtures hold, put into half of the cases.
KNOWN = {
    "appType": "APP_A1",
    "formUuid": "FORM-A1ALL",
    "userId": "admin1",
    "corpId": "corpA",
    "env": "prod",
    "envType": "prod",
    "modelName": "expense",
}
YIDA_CALLER = {"appType": "APP_A1", "systemToken": "ST-A1-SECRET-TOKEN", "userId": "admin1"}


class Live:
    """The fuzzed server and a token per way of authenticating."""

    def __init__(self, server: ServerProcess) -> None:
        self.base = f"http://{server.endpoint}"
        self.cases = 0
        with httpx.Client(base_url=self.base, timeout=10) as http:
            key = {"appKey": "keyA-all", "appSecret": "secret-a-all-0001"}
            self.dingtalk = http.post("/v1.0/oauth2/accessToken", json=key).json()["accessToken"]
            self.oapi = http.get("/gettoken", params={"appkey": key["appKey"], "appsecret": key["appSecret"]}).json()[
                "access_token"
            ]
            admin = {"appKey": "flow-admin", "appSecret": "flow-secret-admin-01"}
            self.admin = http.post("/v1.0/oauth2/accessToken", json=admin).json()["accessToken"]
            self.weda = http.post(
                "/auth/v1/token/clientCredential",
                auth=("AKIDwedatest0001", "weda-test-key-0001"),
                json={"grant_type": "client_credentials"},
            ).json()["access_token"]

    def authenticate(self, case: Any) -> None:
        """Put the token of the operation's dialect where that dialect reads it; for every other case, also the
        names of things that exist (app, system token, user, form, environment, model), so that the generated
        values reach past the checks of who asks and about what."""
        tag = case.operation.definition.raw.get("tags", [""])[0]
        headers = dict(case.headers or {})
        self.cases += 1
        if self.cases % 2:
            known = {k: v for k, v in KNOWN.items() if k in (case.path_parameters or {})}
            case.path_parameters = {**(case.path_parameters or {}), **known}
            if tag == "dingtalk":
                if isinstance(case.body, dict):
                    case.body = {**case.body, **YIDA_CALLER}
                elif case.method == "GET":
                    case.query = {**(case.query or {}), **YIDA_CALLER}
        if tag == "dingtalk":
            headers["x-acs-dingtalk-access-token"] = self.dingtalk
        elif tag == "dingtalk-oapi":
            case.query = {**(case.query or {}), "access_token": self.oapi}
        elif tag.startswith("weda") and tag != "weda-auth":
            headers["authorization"] = f"Bearer {self.weda}"
        elif tag == "admin":
            headers["authorization"] = f"Bearer {self.admin}"
        case.headers = headers


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    bundles = ("corp_a.yaml", "corp_flow.yaml", "corp_weda.yaml", "corp_files.yaml")
    with fresh_url(DATABASE, Path(tmp_path_factory.mktemp("fuzz")), *bundles) as url:
        server = ServerProcess(url, ZIDA_FILES_URL="file://" + str(tmp_path_factory.mktemp("files")))
        try:
            yield Live(server)
        finally:
            server.stop()


def _fuzz(operation: Any, live: Live, failures: list[str]) -> None:
    """``SIZE.fuzz_examples`` generated cases of one operation; the first failure of each kind is kept."""

    @given(operation.as_strategy())
    @settings(
        max_examples=SIZE.fuzz_examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the failing case is printed as it was sent
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        live.authenticate(case)
        SENT[operation.label] = SENT.get(operation.label, 0) + 1
        response = case.call_and_validate(base_url=live.base, checks=CHECKS, timeout=30)
        STATUSES[response.status_code] = STATUSES.get(response.status_code, 0) + 1

    try:
        run()
    except Exception as exc:  # a check's failure (or several): kept with the operation's name, the run goes on
        failures.append(f"{operation.label}: {str(exc)[:1500]}")


def test_every_operation_of_every_dialect(live: Live) -> None:
    schema = schemathesis.openapi.from_url(f"{live.base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    failures: list[str] = []
    for operation in operations:
        _fuzz(operation, live, failures)
    total = sum(SENT.values())
    print(f"\nfuzzing: {total} requests over {len(operations)} operations on {DATABASE}, {len(failures)} failing")
    print(f"answers by status: {dict(sorted(STATUSES.items()))}")
    assert not failures, "\n\n".join(failures)
    assert len(SENT) == len(operations)
    assert total >= SIZE.fuzz_minimum, (total, len(operations))
