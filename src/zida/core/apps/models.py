"""Apps, forms, fields (components) and options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ARRAY_COMPONENTS",
    "COMPONENTS",
    "NUMBER_COMPONENTS",
    "OPTION_COMPONENTS",
    "TEXT_COMPONENTS",
    "App",
    "Field",
    "Form",
    "Option",
]

TEXT_COMPONENTS = frozenset(
    {
        "TextField",
        "TextareaField",
        "RadioField",
        "SelectField",
        "EditorField",
        "SerialNumberField",
        "DigitalSignatureField",
    }
)
NUMBER_COMPONENTS = frozenset({"NumberField", "RateField", "DateField"})
ARRAY_COMPONENTS = frozenset(
    {
        "CheckboxField",
        "MultiSelectField",
        "EmployeeField",
        "DepartmentSelectField",
        "CitySelectField",
        "CascadeSelectField",
    }
)
OPTION_COMPONENTS = frozenset({"RadioField", "SelectField", "CheckboxField", "MultiSelectField"})
OTHER_COMPONENTS = frozenset(
    {
        "CascadeDateField",
        "AddressField",
        "CountrySelectField",
        "AttachmentField",
        "ImageField",
        "AssociationFormField",
        "TableField",
    }
)
COMPONENTS = TEXT_COMPONENTS | NUMBER_COMPONENTS | ARRAY_COMPONENTS | OTHER_COMPONENTS

# How a component's values are stored and compared (what search, indexes and route conditions go by):
# ``text`` / ``number`` scalars, ``array`` a list of strings, ``range`` a pair of numbers (a date range),
# ``objects`` a list of objects with a ``value`` (countries), ``table`` a list of rows (a sub-table), ``other`` any
# JSON that is only tested for emptiness or as text.
_KINDS: dict[str, str] = {
    **dict.fromkeys(TEXT_COMPONENTS, "text"),
    **dict.fromkeys(NUMBER_COMPONENTS, "number"),
    **dict.fromkeys(ARRAY_COMPONENTS, "array"),
    "CascadeDateField": "range",
    "CountrySelectField": "objects",
    "TableField": "table",
}
# Array components whose elements name members of the corp's directory.
_REFERS_TO = {"EmployeeField": "users", "DepartmentSelectField": "departments"}


@dataclass(frozen=True, slots=True)
class Option:
    """A choice of a Radio/Select/Checkbox/MultiSelect field: stored ``value``, shown ``label``."""

    value: str
    label_zh: str
    label_en: str | None = None

    def label(self, language: str) -> str:
        """The label in ``language`` (``en_US`` falls back to Chinese)."""
        return self.label_en if language == "en_US" and self.label_en else self.label_zh


@dataclass(frozen=True, slots=True)
class Field:
    """One component of a form schema."""

    field_id: str
    component: str
    label_zh: str
    label_en: str | None = None
    required: bool = False
    searchable: bool = False
    multiple: bool | None = None
    alias: str | None = None
    options: tuple[Option, ...] = ()
    children: tuple[Field, ...] = ()
    props: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """How values are stored and compared: ``text``, ``number``, ``array``, ``range``, ``objects``, ``table``
        or ``other``."""
        return _KINDS.get(self.component, "other")

    @property
    def refers_to(self) -> str | None:
        """``users`` or ``departments`` when the field's values name members of the directory."""
        return _REFERS_TO.get(self.component)

    def option(self, value: str) -> Option | None:
        """The option whose value (or either label) is ``value``."""
        for opt in self.options:
            if value in (opt.value, opt.label_zh, opt.label_en):
                return opt
        return None

    def to_dict(self) -> dict[str, Any]:
        """The stored (JSON) form of the field."""
        out: dict[str, Any] = {"fieldId": self.field_id, "component": self.component, "label": self.label_zh}
        if self.label_en:
            out["labelEn"] = self.label_en
        if self.required:
            out["required"] = True
        if self.searchable:
            out["searchable"] = True
        if self.multiple is not None:
            out["multiple"] = self.multiple
        if self.alias:
            out["alias"] = self.alias
        if self.options:
            out["options"] = [
                {"value": o.value, "label": o.label_zh, **({"labelEn": o.label_en} if o.label_en else {})}
                for o in self.options
            ]
        if self.children:
            out["fields"] = [c.to_dict() for c in self.children]
        if self.props:
            out["props"] = self.props
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Field:
        """Inverse of :meth:`to_dict`."""
        return cls(
            field_id=raw["fieldId"],
            component=raw["component"],
            label_zh=raw["label"],
            label_en=raw.get("labelEn"),
            required=bool(raw.get("required", False)),
            searchable=bool(raw.get("searchable", False)),
            multiple=raw.get("multiple"),
            alias=raw.get("alias"),
            options=tuple(Option(o["value"], o["label"], o.get("labelEn")) for o in raw.get("options", [])),
            children=tuple(cls.from_dict(c) for c in raw.get("fields", [])),
            props=raw.get("props", {}),
        )


@dataclass(frozen=True, slots=True)
class App:
    """A low-code application of a corp."""

    pk: int
    corp_pk: int
    app_type: str
    name: str
    name_en: str | None
    description: str | None
    icon: str | None
    status: str
    creator_user_id: str | None


@dataclass(frozen=True, slots=True)
class Form:
    """A form at one schema version."""

    pk: int
    app_pk: int
    app_type: str
    form_uuid: str
    title_zh: str
    title_en: str | None
    form_type: str
    version: int
    fields: tuple[Field, ...]
    creator_user_id: str | None
    created_at: int
    model_name: str | None = None  # the WeDa data model this form also is
    # Combinations of fields searched together, each with a composite index (bundle ``searchIndexes``).
    search_indexes: tuple[tuple[str, ...], ...] = ()

    def title(self, language: str) -> str:
        """The title in ``language``."""
        return self.title_en if language == "en_US" and self.title_en else self.title_zh

    def field(self, field_id: str) -> Field | None:
        """Top-level field by id."""
        for f in self.fields:
            if f.field_id == field_id:
                return f
        return None

    def field_by_alias(self, alias: str) -> Field | None:
        """Top-level field by its alias."""
        for f in self.fields:
            if f.alias == alias:
                return f
        return None
