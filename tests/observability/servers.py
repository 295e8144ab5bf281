"""``zida serve`` in a child process whose output is kept (every line it logs), with any worker count, and the
metrics it serves, parsed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SECRET_KEY, start_healthy

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class LoggedServer:
    """``zida serve`` on a free port, its standard output and error captured in ``log_path``."""

    def __init__(
        self, database_url: str, log_path: Path, *, workers: int = 1, host: str = "127.0.0.1", **env: str
    ) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        environment = {**os.environ, "ZIDA_DATABASE_URL": database_url, "ZIDA_SECRET_KEY": SECRET_KEY, **env}
        environment.pop("PROMETHEUS_MULTIPROC_DIR", None)

        def spawn(port: int) -> subprocess.Popen[bytes]:
            command = [sys.executable, "-m", "zida.cli", "serve", "--host", host, "--port", str(port)]
            command += ["--workers", str(workers)]
            return subprocess.Popen(command, env=environment, stdout=self._log, stderr=subprocess.STDOUT)

        self.port, self.proc = start_healthy(spawn, None, 60, lambda: ": " + self.log_text())
        self.endpoint = f"127.0.0.1:{self.port}"
        self.base = f"http://{self.endpoint}"

    def stop(self) -> None:
        """Stop the server (SIGTERM: workers shut down and flush their output) and close the log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def log_text(self) -> str:
        """Everything the server wrote so far."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def scrape(self, **headers: str) -> Samples:
        """``GET /metrics``, parsed: (sample name, labels) → value."""
        reply = httpx.get(f"{self.base}/metrics", headers=headers, timeout=30)
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"].startswith("text/plain; version=")
        return parse(reply.text)


def parse(text: str) -> Samples:
    """Prometheus text → (sample name, labels) → value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels`` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def label_values(samples: Samples, name: str, label: str) -> set[str]:
    """Every value of ``label`` among the samples called ``name``."""
    return {dict(have)[label] for (n, have), _ in samples.items() if n == name and label in dict(have)}
