"""Response shapes of the Yida dialect that need no server: the ``*TimeGMT`` format."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from zida.dialects.dingtalk.shapes import gmt


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (1_763_483_100_000, "2025-11-18T16:25Z"),  # the example api.dingtalk.com gives
        (1_763_483_159_999, "2025-11-18T16:25Z"),  # seconds and milliseconds are dropped, not rounded
        (0, "1970-01-01T00:00Z"),
        (-1, "1969-12-31T23:59Z"),
        (253_402_300_799_000, "9999-12-31T23:59Z"),
    ],
)
def test_gmt_is_utc_at_minute_precision(ms: int, text: str) -> None:
    assert gmt(ms) == text
    assert gmt(ms) == datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%MZ")
