"""The bundle format (``docs/bundle.md``) as validated models; unknown keys are errors."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

__all__ = [
    "AppIn",
    "BundleIn",
    "CorpIn",
    "CredentialIn",
    "DepartmentIn",
    "FieldIn",
    "FormIn",
    "I18nText",
    "KeyProblem",
    "OptionIn",
    "RoleIn",
    "UserIn",
    "WedaIn",
]


class KeyProblem(ValueError):
    """A problem of a model that one of its keys (``key``) holds: the loader's error names that key's path."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)


# A secret is kept exactly as written (every other text loses its surrounding blanks): the admin API stores it so, and
# a client sends it so.
Secret = Annotated[str, StringConstraints(strip_whitespace=False)]


class I18nText(_Model):
    """A text in Chinese and (optionally) English."""

    zh_CN: str
    en_US: str | None = None


class CorpIn(_Model):
    corpId: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1)
    taskApiCode: str | None = Field(default=None, min_length=1)


class DepartmentIn(_Model):
    deptId: int = Field(ge=1)
    name: str = Field(min_length=1)
    nameEn: str | None = None
    parentId: int | None = None
    managers: list[str] = []
    order: int = 0


class UserIn(_Model):
    userId: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1)
    nameEn: str | None = None
    departments: list[int] = []
    manager: str | None = None
    title: str | None = None
    mobile: str | None = None
    email: str | None = None
    unionId: str | None = None
    password: Secret | None = None
    active: bool | None = None  # absent: keep (a new user is active); false: deactivated
    username: str | None = None  # WeDa sign-in name (absent: the userId)


class RoleIn(_Model):
    roleId: int
    name: str = Field(min_length=1)
    group: str | None = None
    members: list[str] = []


class CredentialIn(_Model):
    """An app credential: DingTalk's appKey/appSecret or WeDa's secretId/secretKey (one pair, same thing)."""

    appKey: str | None = Field(default=None, min_length=1, max_length=128)
    appSecret: Secret | None = Field(default=None, min_length=8)
    secretId: str | None = Field(default=None, min_length=1, max_length=128)
    secretKey: Secret | None = Field(default=None, min_length=8)
    scopes: list[str] = ["*"]
    rateLimit: int | None = Field(default=None, ge=0, le=1_000_000)  # calls per second and API; 0: none

    @model_validator(mode="after")
    def _one_pair(self) -> CredentialIn:
        either = "a credential has either appKey (and appSecret) or secretId (and secretKey)"
        if self.appKey is None and self.secretId is None:
            raise KeyProblem(either, "appKey")  # a key that is missing is named, as pydantic names one
        if self.appKey is not None and self.secretId is not None:
            raise KeyProblem(either, "secretId")
        if self.appKey is not None and self.secretKey is not None:
            raise KeyProblem("secretKey goes with secretId, appSecret with appKey", "secretKey")
        if self.secretId is not None and self.appSecret is not None:
            raise KeyProblem("appSecret goes with appKey, secretKey with secretId", "appSecret")
        return self

    @property
    def client_id(self) -> str:
        """The credential's public id, whatever the dialect calls it."""
        return str(self.appKey if self.appKey is not None else self.secretId)

    @property
    def secret(self) -> str | None:
        """The credential's secret, whatever the dialect calls it."""
        return self.appSecret if self.appKey is not None else self.secretKey


class OptionIn(_Model):
    value: str
    label: str | I18nText | None = None


class FieldIn(_Model):
    fieldId: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
    component: str
    label: str | I18nText
    required: bool = False
    searchable: bool = False
    multiple: bool | None = None
    alias: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    options: list[str | OptionIn] = []
    fields: list[FieldIn] = []
    props: dict[str, Any] = {}


class FormIn(_Model):
    formUuid: str = Field(pattern=r"^FORM-[A-Za-z0-9-]{1,64}$")
    title: str | I18nText
    type: Literal["receipt", "process"] = "receipt"
    fields: list[FieldIn] = []
    process: dict[str, Any] | None = None
    creator: str | None = None
    modelName: str | None = None  # this form is also WeDa data model ``modelName``
    # Combinations of fields searched together (each 2–4 field ids): one composite index each.
    searchIndexes: list[list[str]] = []


class AppIn(_Model):
    appType: str = Field(pattern=r"^APP_[A-Za-z0-9_]{1,64}$")
    name: str | I18nText
    description: str | None = None
    icon: str | None = None
    status: Literal["ONLINE", "OFFLINE"] = "ONLINE"
    systemToken: Secret | None = Field(default=None, min_length=8)
    admins: list[str] = []
    creator: str | None = None
    forms: list[FormIn] = []


class QueryParameterIn(_Model):
    key: str = Field(min_length=1, max_length=64)
    type: Literal["STRING", "NUMBER", "BOOLEAN", "ARRAY"]
    default: Any = None  # absent or null: the caller must give the parameter


class QueryTemplateIn(_Model):
    name: str = Field(min_length=1, max_length=64)
    model: str = Field(min_length=1, max_length=64)
    where: dict[str, Any] = {}
    orderBy: list[dict[str, str]] = []
    limit: int = Field(100, ge=1, le=100)
    parameters: list[QueryParameterIn] = []


class WedaIn(_Model):
    envId: str = Field(min_length=1, max_length=64)
    envType: Literal["prod", "pre"] = "prod"
    queryTemplates: list[QueryTemplateIn] = []


class CallbackIn(_Model):
    """Where a credential's events go: an HTTP callback (``callback``: DingTalk's register_call_back format,
    ``http``: the event-subscription format) or Stream mode (``stream``: no url, token or aesKey)."""

    appKey: str = Field(min_length=1, max_length=128)
    kind: Literal["callback", "http", "stream"] = "http"
    url: str | None = None
    token: Secret | None = None
    aesKey: Secret | None = None
    tags: list[str] = Field(min_length=1)
    schedule: Literal["dingtalk", "persistent"] = "persistent"


class BundleIn(_Model):
    corp: CorpIn
    weda: WedaIn | None = None
    departments: list[DepartmentIn] = []
    users: list[UserIn] = []
    roles: list[RoleIn] = []
    credentials: list[CredentialIn] = []
    apps: list[AppIn] = []
    callbacks: list[CallbackIn] = []
