"""The official ``alibabacloud-dingtalk`` SDK pointed at a live Zida, as the Yida exclusive-cluster docs say."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alibabacloud_dingtalk.oauth2_1_0 import models as oauth_models
from alibabacloud_dingtalk.oauth2_1_0.client import Client as OAuthClient
from alibabacloud_dingtalk.yida_1_0 import models as yida_models
from alibabacloud_dingtalk.yida_1_0.client import Client as YidaClient
from alibabacloud_dingtalk.yida_2_0 import models as yida2_models
from alibabacloud_dingtalk.yida_2_0.client import Client as Yida2Client
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_util import models as util_models
from Tea.exceptions import TeaException

A_ALL = ("keyA-all", "secret-a-all-0001")
A_READ = ("keyA-read", "secret-a-read-0001")
A_CONTACTS = ("keyA-contacts", "secret-a-contacts-01")
B_ALL = ("keyB-all", "secret-b-all-0001")

APP_A1 = {"app_type": "APP_A1", "system_token": "ST-A1-SECRET-TOKEN"}
APP_A2 = {"app_type": "APP_A2", "system_token": "ST-A2-SECRET-TOKEN"}
APP_B1 = {"app_type": "APP_B1", "system_token": "ST-B1-SECRET-TOKEN"}


# The SDK's own spellings where they differ from the mechanical ones.
MODEL_NAMES = {"get_form_data_by_id": "GetFormDataByID"}
METHOD_NAMES = {"get_form_data_by_id": "get_form_data_by_idwith_options"}
# Request fields whose names ``Sdk.call`` uses for itself.
FIELD_ALIASES = {"org_token": "token", "form_version": "version"}


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


class Sdk:
    """Official SDK clients for one endpoint, with a helper that calls any ``*_with_options``."""

    def __init__(self, endpoint: str, read_timeout_ms: int | None = None) -> None:
        config = open_api_models.Config(protocol="http", read_timeout=read_timeout_ms)
        self.oauth = OAuthClient(config)
        self.oauth._endpoint = endpoint
        self.yida = YidaClient(config)
        self.yida._endpoint = endpoint
        self.yida2 = Yida2Client(config)
        self.yida2._endpoint = endpoint
        self._tokens: dict[tuple[str, str], str] = {}

    def token(self, credential: tuple[str, str] = A_ALL) -> str:
        """An access token through ``oauth2_1_0.get_access_token`` (cached per credential)."""
        if credential not in self._tokens:
            response = self.oauth.get_access_token(
                oauth_models.GetAccessTokenRequest(app_key=credential[0], app_secret=credential[1])
            )
            self._tokens[credential] = response.body.access_token
        return self._tokens[credential]

    def forget(self, credential: tuple[str, str]) -> None:
        """Drop the cached token of ``credential`` (after a test replaced it on the server)."""
        self._tokens.pop(credential, None)

    def call(self, api: str, *path: str, token: str | None = "default", version: int = 1, **fields: Any) -> Any:
        """``client.<api>_with_options(*path, <Api>Request(**fields), <Api>Headers(token), RuntimeOptions())``.

        ``path`` carries the SDK's positional path parameters (e.g. ``get_form_data_by_id(id, …)``).
        ``token`` is the access token (header) and ``version`` the API version, so request fields of the
        same names are spelled ``org_token`` (``list_application``) and ``form_version``
        (``get_form_component_definition_list``).
        """
        client, models = (self.yida, yida_models) if version == 1 else (self.yida2, yida2_models)
        model = MODEL_NAMES.get(api, _camel(api))
        for alias, name in FIELD_ALIASES.items():
            if alias in fields:
                fields[name] = fields.pop(alias)
        request = getattr(models, model + "Request")(**fields)
        headers = getattr(models, model + "Headers")()
        if token == "default":
            token = self.token()
        if token is not None:
            headers.x_acs_dingtalk_access_token = token
        method = METHOD_NAMES.get(api, api + "_with_options")
        return getattr(client, method)(*path, request, headers, util_models.RuntimeOptions())


def expect_error(call: Callable[[], Any], code: str, status: int) -> TeaException:
    """Run ``call``, which must fail the way the SDK reports a DingTalk error: ``code`` and HTTP ``status``."""
    try:
        call()
    except TeaException as err:
        assert (err.code, err.data.get("statusCode")) == (code, status), err.data
        assert err.data.get("requestid"), err.data
        return err
    raise AssertionError(f"expected {code} ({status}), the call succeeded")
