"""Fixtures of the files core tests."""

from tests.core.files.s3 import moto_server

__all__ = ["moto_server"]
