"""Soak (``tests.reliability.soak``): mixed load on ``zida serve --workers 2`` over PostgreSQL for a minute (short)
or ten (long). After the warm-up (the first third, at most a minute) each worker's memory stays within 10%, and
neither its open file descriptors nor the server's PostgreSQL connections grow."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.conftest import SIZE, fresh_url
from tests.reliability.soak import soak

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(int(SIZE.soak_seconds) + 180)]


def test_workers_stay_flat_under_mixed_load(tmp_path: Path) -> None:
    with fresh_url("postgresql", tmp_path, "corp_flow.yaml") as url:
        found = soak(url, SIZE.soak_seconds, interval=2.0 if SIZE.soak_seconds <= 60 else 5.0)
    assert not found.failures, found.failures[:5]
    assert len(found.workers) == 2, found.workers
    warm_up = min(60.0, SIZE.soak_seconds / 3)
    after = [s for s in found.samples if s.at >= warm_up]
    assert len(after) >= 6, len(after)
    third = max(1, len(after) // 3)
    first, last = after[:third], after[-third:]
    for pid in found.workers:
        rss = [s.rss_kib[pid] for s in after]
        assert max(rss) <= 1.10 * min(rss), f"worker {pid} memory after warm-up (KiB): {rss}"
        assert max(s.fds[pid] for s in last) <= max(s.fds[pid] for s in first), [s.fds[pid] for s in after]
    assert max(s.connections for s in last) <= max(s.connections for s in first), [s.connections for s in after]
    assert found.calls + found.reads > 100 * SIZE.soak_seconds / 60
    rss_text = {pid: (min(s.rss_kib[pid] for s in after), max(s.rss_kib[pid] for s in after)) for pid in found.workers}
    print(
        f"\nsoak {SIZE.soak_seconds:.0f} s: {found.calls} writes and {found.reads} reads answered; RSS KiB after "
        f"warm-up (min, max) per worker {rss_text}; fds {[s.fds for s in (after[0], after[-1])]}; "
        f"PostgreSQL connections {after[0].connections} → {after[-1].connections}"
    )
