"""The admin API's one permission name."""

from __future__ import annotations

from zida.core.principals import Scope

__all__ = ["ADMIN_PERMISSION", "PERMISSIONS"]

ADMIN_PERMISSION = "Zida.Admin"
PERMISSIONS: dict[str, Scope] = {ADMIN_PERMISSION: Scope.ADMIN}
