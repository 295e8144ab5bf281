"""The org tests' fresh corp (``tests.core.org.conftest``): its app and forms are what these tests change."""

from __future__ import annotations

from tests.core.org.conftest import org

__all__ = ["org"]
