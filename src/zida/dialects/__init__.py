"""Dialects: each translates one wire format to core calls and core results/errors back.

``permission_names()`` is every dialect's name for the neutral scopes (``zida.core.principals.Scope``), so that a
bundle or an admin call may grant scopes in the words its users know.
"""

from __future__ import annotations

from zida.core.principals import Scope

__all__ = ["permission_names"]


def permission_names() -> dict[str, frozenset[Scope]]:
    """Each dialect's permission name (and wildcard) → the neutral scopes it grants."""
    from zida.dialects.admin.scopes import PERMISSIONS as ADMIN
    from zida.dialects.dingtalk.scopes import PERMISSIONS as DINGTALK
    from zida.dialects.dingtalk.scopes import WILDCARDS as DINGTALK_WILDCARDS

    names: dict[str, frozenset[Scope]] = {name: frozenset({scope}) for name, scope in {**DINGTALK, **ADMIN}.items()}
    names.update(DINGTALK_WILDCARDS)
    return names
