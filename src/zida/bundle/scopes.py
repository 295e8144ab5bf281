"""Scope names a bundle may grant: Zida's neutral scopes (``records.read``…), any dialect's permission names
(``Yida.Form.Read``…, ``Zida.Admin``), prefix wildcards of them (``Yida.*``, ``Yida.Form.*``) and ``*``."""

from __future__ import annotations

from collections.abc import Iterable

from zida.core.principals import Scope, scope_names
from zida.dialects import permission_names

__all__ = ["granted_scopes"]


def granted_scopes(names: Iterable[str]) -> list[str]:
    """The stored (neutral) form of the scopes ``names`` grant; an unknown name raises ``ValueError``."""
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
