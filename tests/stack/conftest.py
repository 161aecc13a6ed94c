"""Fixtures for the stack tests: the built otelcol-obs, a running native stack, PromQL."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from otel_obs.stack import COLLECTOR_DIR, Ports, Stack, collector_binary

EMITTER = Path(__file__).with_name("emitter.py")


@pytest.fixture(scope="session")
def otelcol() -> Path:
    binary = collector_binary()
    if binary is None:
        pytest.fail("otelcol-obs is not built: run collector/build.sh (scripts/setup.sh does)")
    return binary


@pytest.fixture(scope="module")
def stack(otelcol: Path, tmp_path_factory: pytest.TempPathFactory):
    """A native stack on free ports, scraping every second; stopped after the module."""
    native = Stack(
        tmp_path_factory.mktemp("stack"),
        Ports.free(),
        collector=otelcol,
        scrape_interval="1s",
    )
    native.up()
    yield native
    native.down()


class Prometheus:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as response:
            payload = json.load(response)
        assert payload["status"] == "success", payload
        return payload["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.get("/api/v1/query", query=expr)["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        if not result:
            return None
        assert len(result) == 1, result
        return float(result[0]["value"][1])

    def names(self) -> list[str]:
        return self.get("/api/v1/label/__name__/values")

    def wait_for(
        self, expr: str, expected: float | None = None, timeout: float = 30.0
    ) -> float | None:
        """Poll ``expr`` until it has a value (equal to ``expected`` if given); return the last."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.value(expr)
            if value is not None and (expected is None or value == expected):
                return value
            time.sleep(0.5)
        return value


@pytest.fixture(scope="module")
def prometheus(stack: Stack) -> Prometheus:
    return Prometheus(stack.urls["prometheus"])


def run_emitter(*args: str, timeout: float = 90) -> dict[str, Any]:
    """Run the instrumented process; return what it says it sent."""
    completed = subprocess.run(
        [sys.executable, str(EMITTER), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=COLLECTOR_DIR.parent,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])
