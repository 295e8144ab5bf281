"""What makes metrics and the access line cheap per request keeps their meaning: a histogram or counter fed through
a tally and flushed exposes exactly what direct observations would (single- and multi-process mode: this fails if
prometheus_client's ``_sum``/``_buckets``/``_upper_bounds`` internals change), nothing is lost between flushes, and
the access line written straight to Zida's JSON stream handler is the line the formatter makes, with logging's levels
honoured and any other set-up served by ``logging``."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from tests.observability.servers import parse
from zida.observability import logs, metrics
from zida.observability.logs import ACCESS_LOG, JsonFormatter, TextFormatter, log_access

BUCKETS = (0.001, 0.005, 0.01, 0.5, 1.0)
# On a bound, between bounds, above them all, zero, repeated: every branch of the bucket choice.
AMOUNTS = [0.0, 0.001, 0.0011, 0.005, 0.2, 0.5, 0.5, 0.9999, 1.0, 1.5, 30.0, 0.0004, 0.01]


def _histograms() -> tuple[CollectorRegistry, Histogram, CollectorRegistry, Histogram]:
    direct_registry, tallied_registry = CollectorRegistry(), CollectorRegistry()
    direct = Histogram("t_seconds", "t", ("route",), buckets=BUCKETS, registry=direct_registry)
    tallied = Histogram("t_seconds", "t", ("route",), buckets=BUCKETS, registry=tallied_registry)
    return direct_registry, direct, tallied_registry, tallied


def test_a_flushed_histogram_tally_exposes_what_direct_observations_would() -> None:
    direct_registry, direct, tallied_registry, tallied = _histograms()
    tally = metrics.HistogramTally(tallied.labels("/a"))
    for amount in AMOUNTS:
        direct.labels("/a").observe(amount)
        tally.observe(amount)
    before_flush = parse(generate_latest(tallied_registry).decode())
    assert not any(v for (name, _), v in before_flush.items() if name.endswith(("_count", "_sum")))
    tally.flush()
    tally.flush()  # nothing pending: adds nothing
    want, got = parse(generate_latest(direct_registry).decode()), parse(generate_latest(tallied_registry).decode())
    assert set(want) == set(got)
    for key, expected in want.items():
        if not key[0].endswith("_created"):
            assert got[key] == pytest.approx(expected), key
    # A second batch adds to the first.
    for amount in AMOUNTS[:4]:
        direct.labels("/a").observe(amount)
        tally.observe(amount)
    tally.flush()
    want, got = parse(generate_latest(direct_registry).decode()), parse(generate_latest(tallied_registry).decode())
    assert got[("t_seconds_count", frozenset({("route", "/a")}))] == len(AMOUNTS) + 4
    for key, expected in want.items():
        if not key[0].endswith("_created"):
            assert got[key] == pytest.approx(expected), key


def test_a_counter_tally_and_the_shared_tallies() -> None:
    registry = CollectorRegistry()
    counter = Counter("c", "c", ("result",), registry=registry)
    tally = metrics.counter_tally(counter.labels("hit"))
    assert metrics.counter_tally(counter.labels("hit")) is tally  # one tally per child
    for _ in range(5):
        tally.count += 1
    assert parse(generate_latest(registry).decode()).get(("c_total", frozenset({("result", "hit")}))) == 0
    metrics.flush()  # every tally of the process, this one included
    assert parse(generate_latest(registry).decode())[("c_total", frozenset({("result", "hit")}))] == 5
    assert tally.count == 0


_MULTIPROCESS = """
import sys
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from zida.observability.metrics import CounterTally, HistogramTally
amounts = [float(a) for a in sys.argv[1:]]
buckets = (0.001, 0.005, 0.01, 0.5, 1.0)
direct = Histogram("direct_seconds", "d", buckets=buckets)
tallied = HistogramTally(Histogram("tallied_seconds", "t", buckets=buckets))
requests = CounterTally(Counter("requests", "r", ("status",)).labels("200"))
for amount in amounts:
    direct.observe(amount)
    tallied.observe(amount)
    requests.count += 1
tallied.flush()
requests.flush()
registry = CollectorRegistry()
multiprocess.MultiProcessCollector(registry)
sys.stdout.write(generate_latest(registry).decode())
"""


def test_tallies_in_multiprocess_mode(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", _MULTIPROCESS, *map(str, AMOUNTS)], env=env, capture_output=True, text=True, check=True
    ).stdout
    samples = parse(out)
    direct = {(n.removeprefix("direct"), labels): v for (n, labels), v in samples.items() if n.startswith("direct")}
    tallied = {(n.removeprefix("tallied"), labels): v for (n, labels), v in samples.items() if n.startswith("tallied")}
    assert direct and set(direct) == set(tallied)
    for key, expected in direct.items():
        assert tallied[key] == pytest.approx(expected), key
    assert tallied[("_seconds_count", frozenset())] == len(AMOUNTS)
    assert samples[("requests_total", frozenset({("status", "200")}))] == len(AMOUNTS)


FIELDS = {
    "request_id": "0123456789ABCDEF0123456789ABCDEF",
    "dialect": "dingtalk",
    "corp": "corpA",
    "credential": "keyA-all",
    "method": "GET",
    "route": "/v1.0/yida/forms/instances/{id}",
    "status": 200,
    "duration_ms": 1.25,
}


@pytest.fixture
def zida_logger() -> Iterator[logging.Logger]:
    """The ``zida`` logger set up as ``logging_config`` does (a stream handler, not propagating), restored after."""
    zida, access = logging.getLogger("zida"), ACCESS_LOG
    saved = (zida.handlers[:], zida.level, zida.propagate, access.handlers[:], access.level, access.filters[:])
    zida.handlers, zida.propagate = [], False
    zida.setLevel(logging.INFO)
    access.setLevel(logging.NOTSET)
    try:
        yield zida
    finally:
        zida.handlers, zida.propagate, access.handlers, access.filters = saved[0], saved[2], saved[3], saved[5]
        zida.setLevel(saved[1])
        access.setLevel(saved[4])
        logging.disable(logging.NOTSET)


def _stream(
    zida: logging.Logger, formatter: logging.Formatter
) -> tuple[io.StringIO, logging.StreamHandler[io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    zida.handlers = [handler]  # only this one (pytest's capture adds its own during a test)
    return stream, handler


def test_the_direct_access_line_is_the_formatters(zida_logger: logging.Logger) -> None:
    stream, handler = _stream(zida_logger, JsonFormatter())
    assert logs._json_stream_handler(ACCESS_LOG) is handler  # the direct path is taken
    log_access(FIELDS)
    ACCESS_LOG.info("request", extra={"access": FIELDS})  # what the formatter writes
    direct, formatted = (json.loads(line) for line in stream.getvalue().splitlines())
    assert list(direct) == list(formatted)  # the same fields, in the same order
    assert direct.pop("time")[:16] == formatted.pop("time")[:16] and direct == formatted
    assert formatted["request_id"] == FIELDS["request_id"] and formatted["msg"] == "request"
    assert len(stream.getvalue().splitlines()) == 2


def test_the_direct_access_line_honours_levels(zida_logger: logging.Logger) -> None:
    stream, handler = _stream(zida_logger, JsonFormatter())
    handler.setLevel(logging.WARNING)
    log_access(FIELDS)
    handler.setLevel(logging.NOTSET)
    zida_logger.setLevel(logging.WARNING)
    log_access(FIELDS)
    zida_logger.setLevel(logging.INFO)
    logging.disable(logging.INFO)
    log_access(FIELDS)
    assert stream.getvalue() == ""
    logging.disable(logging.NOTSET)
    log_access(FIELDS)
    assert json.loads(stream.getvalue())["status"] == 200


def test_other_set_ups_go_through_logging(zida_logger: logging.Logger) -> None:
    stream, handler = _stream(zida_logger, TextFormatter())  # text lines: the formatter's
    assert logs._json_stream_handler(ACCESS_LOG) is None
    log_access(FIELDS)
    assert " zida.access request " in stream.getvalue() and "status=200" in stream.getvalue()
    handler.setFormatter(JsonFormatter())
    dropped: list[str] = []

    def drop(record: logging.LogRecord) -> bool:
        dropped.append(record.name)
        return False

    ACCESS_LOG.addFilter(drop)  # a filter is honoured: the record goes through logging
    log_access(FIELDS)
    ACCESS_LOG.removeFilter(drop)
    assert dropped == ["zida.access"] and stream.getvalue().count("\n") == 1
    second = io.StringIO()
    extra = logging.StreamHandler(second)  # two handlers: both get the line
    extra.setFormatter(JsonFormatter())
    ACCESS_LOG.addHandler(extra)
    log_access(FIELDS)
    assert json.loads(second.getvalue())["route"] == FIELDS["route"] and stream.getvalue().count("\n") == 2
