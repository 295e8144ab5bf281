"""What a running Zida tells its operator: request ids, Prometheus metrics (``/metrics``) and structured logs.

``context`` (the request being served: its id and caller), ``metrics`` (what is counted, multi-process mode),
``logs`` (the JSON or text lines, the access line, redaction) and ``http`` (the request observer and ``/metrics``).
README "Metrics and logs".
"""

__all__: list[str] = []
