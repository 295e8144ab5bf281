"""Time in one place: epoch milliseconds everywhere inside Zida."""

from __future__ import annotations

import time

__all__ = ["now_ms"]


def now_ms() -> int:
    """Current time as epoch milliseconds."""
    return time.time_ns() // 1_000_000
