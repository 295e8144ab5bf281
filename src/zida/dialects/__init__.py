"""Dialects: each translates one wire format to core calls and core results/errors back.

``permission_names()`` is every dialect's name for the neutral scopes (``zida.core.principals.Scope``), so that a
bundle or an admin call may grant scopes in the words its users know; ``granted_scopes()`` turns such names into the
neutral names a credential stores.
"""

from __future__ import annotations

from collections.abc import Iterable

from zida.core.principals import Scope, scope_names

__all__ = ["granted_scopes", "permission_names"]


def permission_names() -> dict[str, frozenset[Scope]]:
    """Each dialect's permission name (and wildcard) → the neutral scopes it grants."""
    from zida.dialects.admin.scopes import PERMISSIONS as ADMIN
    from zida.dialects.dingtalk.scopes import PERMISSIONS as DINGTALK
    from zida.dialects.dingtalk.scopes import WILDCARDS as DINGTALK_WILDCARDS

    names: dict[str, frozenset[Scope]] = {name: frozenset({scope}) for name, scope in {**DINGTALK, **ADMIN}.items()}
    names.update(DINGTALK_WILDCARDS)
    return names


def granted_scopes(names: Iterable[str]) -> list[str]:
    """The stored (neutral) form of the scopes ``names`` grant: Zida's neutral names (``records.read``…), any
    dialect's permission names (``Yida.Form.Read``…, ``Zida.Admin``), prefix wildcards of them (``Yida.*``,
    ``Yida.Form.*``) and ``*``; an unknown name raises ``ValueError``."""
    known = permission_names()
    out: set[Scope] = set()
    for name in names:
        if name == "*":
            return ["*"]
        if name in Scope._value2member_map_:
            out.add(Scope(name))
        elif name in known:
            out.update(known[name])
        elif name.endswith(".*") and any(k.startswith(name[:-1]) for k in known):
            for permission, scopes in known.items():
                if permission.startswith(name[:-1]):
                    out.update(scopes)
        else:
            raise ValueError(f"unknown scope {name!r}")
    return scope_names(out)
