"""Prometheus metrics of a Zida process, served at ``/metrics`` (``zida.observability.http``; README "Metrics and
logs").

What is counted, and where (each at the one place the thing happens, with label children made once, so a request
pays a dictionary lookup and a few additions, no allocation; see "Batching" below):

* ``zida_http_requests_total{dialect,route,method,status}`` and ``zida_http_request_duration_seconds{dialect,route}``:
  every request a dialect answered (the request observer). ``route`` is the matched route's path template
  (``/v1.0/yida/forms/instances/{id}``, never a path with an id in it; ``unmatched`` for a path no route has), a
  method other than the usual seven counts as ``OTHER``: the label values are bounded by the routes Zida declares.
* ``zida_db_statement_duration_seconds``: each statement as its caller waited for it (``zida.db``'s statement
  observer: two clock reads and an observation); ``zida_db_pool_size``, ``zida_db_pool_in_use``,
  ``zida_db_pool_waiting``: connections, sampled every second (no cost per request).
* ``zida_events_delivered_total{kind}``, ``zida_events_delivery_failures_total{kind}`` and
  ``zida_events_delivery_lag_seconds`` (event time to the receiver taking it): the delivery worker's sends.
* ``zida_rate_limited_total{limit}`` (``api`` or ``corp``): calls the rate limiter refused.
* ``zida_token_cache_lookups_total{result}`` (``hit``/``miss``): access-token checks served from the in-process
  cache or not; the hit rate is ``hit / (hit + miss)``.
* ``zida_worker_resident_memory_bytes`` and ``zida_worker_open_fds`` (one series per worker ``pid``), sampled every
  second.

Multi-process mode: prometheus_client keeps each worker's values in files of ``PROMETHEUS_MULTIPROC_DIR`` (its own
variable, read at its import: ``zida serve --workers N`` sets it to a fresh directory before the workers start, and
``Settings.metrics_dir`` mirrors it) and ``/metrics`` sums every worker's files, whichever worker answers. A worker
that stops marks its gauges dead; uvicorn has no hook for a worker that died (killed, crashed: it restarts it), so a
scrape marks the gauges of workers whose process is gone. Counters of dead workers stay in the sums (counters never
go back), and the process collector's ``process_*`` metrics exist only in single-process mode (the per-worker gauges
above stand in for them).

Batching: in multi-process mode every ``inc``/``observe`` of prometheus_client takes a lock and writes a value of an
mmap'd file, which costs as much as the rest of a cached read's observation. So what happens per request or per
statement (requests, their latency, statements, token cache lookups, rate-limited calls) is added to plain
per-process tallies (``CounterTally``, ``HistogramTally``: a few additions on the event loop, no lock, no file) and
folded into the prometheus_client metrics by ``flush``: every second (``FLUSH_SECONDS``, the sampler's task), right
before this process answers a scrape, and when the server stops. Staleness bound: a scrape shows everything the
answering worker counted, and every other worker's counts as of its last flush — at most about a second behind
(longer only if that worker's event loop is blocked). A worker killed outright (``kill -9``) loses the counts of its
last second at most. A batch of histogram observations is added bucket by bucket through the histogram child's
``_sum`` and ``_buckets`` values (prometheus_client has no public call to add many at once); a test
(``tests/observability/test_tallies.py``) fails if those internals change.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import glob
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client import multiprocess as _multiprocess

from zida.settings import Settings

__all__ = [
    "FLUSH_SECONDS",
    "HTTP_LATENCY",
    "HTTP_REQUESTS",
    "REGISTRY",
    "CounterTally",
    "HistogramTally",
    "count_deliveries",
    "exposition",
    "flush",
    "multiprocess_directory",
    "observing",
    "rate_limited",
    "reset_directory",
    "token_cache_lookup",
]

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # exposed in single-process mode only (multi-process: a registry per scrape)

# Seconds: a record read takes about a millisecond, a search tens, a broad one seconds.
_REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_STATEMENT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 10.0)
_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0, 86400.0)

HTTP_REQUESTS = Counter(
    "zida_http_requests",
    "Requests answered, by dialect, route template, method and status",
    ("dialect", "route", "method", "status"),
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "zida_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by dialect and route template",
    ("dialect", "route"),
    buckets=_REQUEST_BUCKETS,
    registry=REGISTRY,
)
_DB_STATEMENT = Histogram(
    "zida_db_statement_duration_seconds",
    "Database statements as their caller waited for them (a pool connection included)",
    buckets=_STATEMENT_BUCKETS,
    registry=REGISTRY,
)
_DB_POOL_SIZE = Gauge(
    "zida_db_pool_size", "Database connections the pool may hold", multiprocess_mode="livesum", registry=REGISTRY
)
_DB_POOL_IN_USE = Gauge(
    "zida_db_pool_in_use",
    "Database connections running a statement or holding a transaction",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
_DB_POOL_WAITING = Gauge(
    "zida_db_pool_waiting",
    "Statements and transactions waiting for a connection (SQLite: readers and the writer; PostgreSQL: not known)",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
_DELIVERED = Counter(
    "zida_events_delivered", "Event deliveries a receiver took, by subscription kind", ("kind",), registry=REGISTRY
)
_DELIVERY_FAILURES = Counter(
    "zida_events_delivery_failures",
    "Event sends a receiver did not take (each is retried or, past its schedule, failed), by subscription kind",
    ("kind",),
    registry=REGISTRY,
)
_DELIVERY_LAG = Histogram(
    "zida_events_delivery_lag_seconds",
    "Time from an event (its outbox row) to a receiver taking it",
    buckets=_LAG_BUCKETS,
    registry=REGISTRY,
)
_RATE_LIMITED = Counter(
    "zida_rate_limited", "Calls refused by a rate limit (api: credential and API; corp)", ("limit",), registry=REGISTRY
)
_TOKEN_CACHE = Counter(
    "zida_token_cache_lookups",
    "Access-token checks answered from the in-process cache (hit) or the database (miss)",
    ("result",),
    registry=REGISTRY,
)
_MEMORY = Gauge(
    "zida_worker_resident_memory_bytes",
    "Resident memory of each worker process",
    multiprocess_mode="liveall",
    registry=REGISTRY,
)
_FDS = Gauge(
    "zida_worker_open_fds",
    "Open file descriptors of each worker process",
    multiprocess_mode="liveall",
    registry=REGISTRY,
)


class CounterTally:
    """Increments of one counter child not yet added to it (``flush`` adds them): ``tally.count += 1`` is the whole
    cost of counting."""

    __slots__ = ("child", "count")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.count = 0

    def flush(self) -> None:
        """Add the pending increments to the counter."""
        count = self.count
        if count:
            self.count = 0
            self.child.inc(count)


class HistogramTally:
    """Observations of one histogram child not yet added to it (``flush`` adds them): their sum and how many fell in
    each bucket (not cumulative, as prometheus_client keeps them)."""

    __slots__ = ("bounds", "child", "counts", "total")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.bounds = tuple(child._upper_bounds[:-1])  # the finite ones: an amount above them all goes in +Inf
        self.counts = [0] * len(child._upper_bounds)
        self.total = 0.0

    def observe(self, amount: float) -> None:
        """Tally one observation (what ``Histogram.observe`` does: the first bucket whose bound is >= ``amount``)."""
        self.total += amount
        self.counts[bisect.bisect_left(self.bounds, amount)] += 1

    def flush(self) -> None:
        """Add the pending observations to the histogram: its sum, and each bucket's count."""
        counts = self.counts
        if not any(counts):
            return
        total, self.total, self.counts = self.total, 0.0, [0] * len(counts)
        self.child._sum.inc(total)
        for bucket, count in zip(self.child._buckets, counts, strict=True):
            if count:
                bucket.inc(count)


_TALLIES: dict[int, CounterTally | HistogramTally] = {}  # by id of the child (kept alive by its metric)


def counter_tally(child: Any) -> CounterTally:
    """The tally of a counter child (one per child in this process, flushed by ``flush``)."""
    tally = _TALLIES.get(id(child))
    if tally is None:
        tally = _TALLIES[id(child)] = CounterTally(child)
    assert isinstance(tally, CounterTally)
    return tally


def histogram_tally(child: Any) -> HistogramTally:
    """The tally of a histogram child (one per child in this process, flushed by ``flush``)."""
    tally = _TALLIES.get(id(child))
    if tally is None:
        tally = _TALLIES[id(child)] = HistogramTally(child)
    assert isinstance(tally, HistogramTally)
    return tally


def flush() -> None:
    """Add every pending tally of this process to its metric (on the event loop: the tallies are not locked)."""
    for tally in list(_TALLIES.values()):
        tally.flush()


# Tallies made once: counting is then an addition.
_TOKEN_LOOKUPS = (counter_tally(_TOKEN_CACHE.labels("miss")), counter_tally(_TOKEN_CACHE.labels("hit")))
_LIMITED = {"api": counter_tally(_RATE_LIMITED.labels("api")), "corp": counter_tally(_RATE_LIMITED.labels("corp"))}
_STATEMENTS = histogram_tally(_DB_STATEMENT)

FLUSH_SECONDS = 1.0  # how often tallies are flushed (and gauges sampled): the staleness bound of another worker
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_enabled = False


def token_cache_lookup(hit: bool) -> None:
    """Count one access-token check, answered from the cache or not."""
    if _enabled:
        _TOKEN_LOOKUPS[hit].count += 1


def rate_limited(limit: str) -> None:
    """Count one call refused by the ``limit`` (``api`` or ``corp``) rate limit."""
    if _enabled:
        _LIMITED[limit].count += 1


def count_deliveries(kind: str, event_times_ms: Sequence[int], failures: int, now_ms: int) -> None:
    """Count the outcome of sends to one subscription of ``kind``: the times of the events its receiver took (their
    lag is observed), and how many sends it did not take."""
    if not _enabled:
        return
    if event_times_ms:
        _DELIVERED.labels(kind).inc(len(event_times_ms))
        for event_time in event_times_ms:
            _DELIVERY_LAG.observe(max(0.0, (now_ms - event_time) / 1000))
    if failures:
        _DELIVERY_FAILURES.labels(kind).inc(failures)


def _sample(db: Any) -> None:
    """Set the sampled gauges: the database pool's use, this worker's memory and descriptors."""
    use = db.pool_use()
    _DB_POOL_SIZE.set(use.size)
    _DB_POOL_IN_USE.set(use.in_use)
    _DB_POOL_WAITING.set(use.waiting)
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/statm") as statm:
            _MEMORY.set(int(statm.read().split()[1]) * _PAGE_SIZE)
        _FDS.set(len(os.listdir("/proc/self/fd")))


async def _sample_forever(db: Any) -> None:
    while True:
        flush()
        _sample(db)
        await asyncio.sleep(FLUSH_SECONDS)


@asynccontextmanager
async def observing(settings: Settings, db: Any) -> AsyncIterator[None]:
    """Metrics on for the server's lifetime (``ZIDA_METRICS``): the counters above, the database's statement
    observer and the sampler (which flushes the tallies); at the end the tallies are flushed and, in multi-process
    mode, this worker's gauges are marked dead."""
    global _enabled
    if not settings.metrics:
        yield
        return
    from zida.db.database import observe_statements

    _enabled = True
    observe_statements(_STATEMENTS.observe)
    sampler = asyncio.create_task(_sample_forever(db), name="zida-metrics-sampler")
    try:
        yield
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        observe_statements(None)
        _enabled = False
        flush()  # the last counts of a worker that stops are kept
        if settings.metrics_dir:
            _multiprocess.mark_process_dead(os.getpid(), settings.metrics_dir)  # type: ignore[no-untyped-call]


_LIVE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def _mark_dead_workers(directory: str) -> None:
    """Mark the gauges of workers whose process is gone (killed or crashed: uvicorn restarts them, no hook)."""
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        match = _LIVE_FILE.search(path)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            _multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
        except PermissionError:  # alive, another user's
            continue


def exposition(settings: Settings, db: Any = None) -> bytes:
    """The metrics in Prometheus's text format: this process's, or (multi-process mode) every worker's summed (call
    ``flush`` first, on the event loop, for this process's latest counts)."""
    if settings.metrics_dir:
        _mark_dead_workers(settings.metrics_dir)
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry, path=settings.metrics_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    if db is not None:
        _sample(db)  # one process: the gauges as of now
    return generate_latest(REGISTRY)


def reset_directory(directory: str) -> None:
    """Empty a multi-process directory of a previous run's files (prometheus_client's ``*.db``; nothing else)."""
    for path in glob.glob(os.path.join(directory, "*.db")):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


@contextmanager
def multiprocess_directory(settings: Settings, workers: int) -> Iterator[str | None]:
    """For ``zida serve``: prometheus_client's multi-process directory, set before the workers start. The
    operator's own ``PROMETHEUS_MULTIPROC_DIR`` is emptied of a previous run's files; else, with several workers
    and metrics on, a fresh temporary directory is made (and removed at the end); else None (one process)."""
    if settings.metrics_dir:
        reset_directory(settings.metrics_dir)
        yield settings.metrics_dir
        return
    if not settings.metrics or workers <= 1:
        yield None
        return
    directory = tempfile.mkdtemp(prefix="zida-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # prometheus_client reads it when a worker imports it
    try:
        yield directory
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(directory, ignore_errors=True)
