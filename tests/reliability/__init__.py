"""The reliability proof (issue 15 §7): kill -9 under load, PostgreSQL restarted under load, fuzzing, upgrade, soak.

Not part of ``make test``: ``make reliability-short`` (CI) and ``make reliability`` (the long runs) select these
tests by their ``reliability`` marker; ``RELIABILITY_SIZE=short|long`` sets their size.
"""
