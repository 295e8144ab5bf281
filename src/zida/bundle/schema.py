"""The bundle format (``docs/bundle.md``) as validated models; unknown keys are errors."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AppIn",
    "BundleIn",
    "CorpIn",
    "CredentialIn",
    "DepartmentIn",
    "FieldIn",
    "FormIn",
    "I18nText",
    "OptionIn",
    "RoleIn",
    "UserIn",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)


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
    password: str | None = None
    active: bool | None = None  # absent: keep (a new user is active); false: deactivated


class RoleIn(_Model):
    roleId: int
    name: str = Field(min_length=1)
    group: str | None = None
    members: list[str] = []


class CredentialIn(_Model):
    appKey: str = Field(min_length=1, max_length=128)
    appSecret: str | None = Field(default=None, min_length=8)
    scopes: list[str] = ["*"]


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


class AppIn(_Model):
    appType: str = Field(pattern=r"^APP_[A-Za-z0-9_]{1,64}$")
    name: str | I18nText
    description: str | None = None
    icon: str | None = None
    status: Literal["ONLINE", "OFFLINE"] = "ONLINE"
    systemToken: str | None = Field(default=None, min_length=8)
    admins: list[str] = []
    creator: str | None = None
    forms: list[FormIn] = []


class BundleIn(_Model):
    corp: CorpIn
    departments: list[DepartmentIn] = []
    users: list[UserIn] = []
    roles: list[RoleIn] = []
    credentials: list[CredentialIn] = []
    apps: list[AppIn] = []
