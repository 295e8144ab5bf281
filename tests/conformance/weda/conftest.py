"""The WeDa corps and live server of ``tests.dialects.weda`` (the same session fixtures)."""

from tests.dialects.weda.conftest import weda_base, weda_url

__all__ = ["weda_base", "weda_url"]
