"""A real stack holding real data: otelcol-obs and Prometheus fed by a workload.

The stack is ``otel_obs.stack.Stack`` with the shipped configs on free loopback ports. Its
Tempo and Loki exporters point at closed ports and its export queue is tiny, so that the
Collector's queue, refusal and drop metrics carry real values too. A real redis-server
serves the workload's Redis commands.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

WORKLOAD = Path(__file__).with_name("workload.py")
WORKLOAD_SECONDS = 20.0
# "synthetic" (default): workload.py, two service processes. "demo": `otel-obs demo`, the
# sample service, pointed at the test stack; it needs the zero-code start (`otel-obs run`).
WORKLOAD_SOURCE = os.environ.get("OTEL_OBS_DASHBOARD_WORKLOAD", "synthetic")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveData:
    prometheus: str
    start: float
    end: float

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        return self._get("/api/v1/query", {"query": expr, "time": at or self.end})

    def query_range(self, expr: str, step: str = "2s") -> list[dict[str, Any]]:
        params = {"query": expr, "start": self.start, "end": self.end, "step": step}
        return self._get("/api/v1/query_range", params)

    def exemplars(self, selector: str) -> list[dict[str, Any]]:
        params = {"query": selector, "start": self.start, "end": self.end}
        return self._get("/api/v1/query_exemplars", params, key=None)

    def rules(self) -> list[dict[str, Any]]:
        """The rule groups Prometheus loaded, with each rule's health and last error."""
        return self._get("/api/v1/rules", {}, key="groups")

    def _get(
        self, path: str, params: dict[str, Any], key: str | None = "result"
    ) -> list[dict[str, Any]]:
        url = f"{self.prometheus}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            raise QueryError(json.load(error).get("error", str(error))) from None
        return body["data"] if key is None else body["data"][key]


class QueryError(Exception):
    """Prometheus refused a query; the message is its error."""


class _redis:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory

    def __enter__(self) -> str:
        command = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return f"redis://127.0.0.1:{self.port}/0"
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _run_workload(endpoint: str, redis_url: str, directory: Path) -> None:
    processes = []
    for role in ("api", "worker"):
        log = open(directory / f"workload-{role}.log", "wb")
        command = [
            sys.executable,
            str(WORKLOAD),
            "--role",
            role,
            "--endpoint",
            endpoint,
            "--redis-url",
            redis_url,
            "--seconds",
            str(WORKLOAD_SECONDS),
        ]
        env = {**os.environ, "OTEL_OBS_RAISE_INTERNAL_ERRORS": "true"}
        processes.append(
            (role, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env), log)
        )
    for role, process, log in processes:
        code = process.wait(timeout=WORKLOAD_SECONDS + 60)
        log.close()
        if code != 0:
            tail = (directory / f"workload-{role}.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"workload {role} exited with {code}:\n{tail}")


def _run_demo(directory: Path) -> None:
    # The demo finds the stack through its directory (stack.json holds the free ports).
    env = {**os.environ, "OTEL_OBS_STACK_DIR": str(directory)}
    command = [
        sys.executable,
        "-m",
        "otel_obs.cli",
        "demo",
        "--duration",
        str(WORKLOAD_SECONDS),
        "--json",
    ]
    result = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=WORKLOAD_SECONDS + 240,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"otel-obs demo exited with {result.returncode}:\n{result.stderr[-3000:]}"
        )


def live_data(directory: Path) -> Iterator[LiveData]:
    """Start the stack in ``directory``, run the workload, yield the data; stop it all."""
    from otel_obs.stack import Ports, Stack, collector_binary

    if collector_binary() is None:
        pytest.skip(
            "otelcol-obs is not built (collector/build.sh): the dashboard data test runs "
            "SDK -> otelcol-obs -> Prometheus and has no other source of real data"
        )
    for binary in ("prometheus", "redis-server"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} is not installed; the dashboard data test needs it")

    stack = Stack(
        directory,
        Ports.free(),
        scrape_interval="1s",
        local_overlay=False,
        env={
            # Nothing listens there: exports queue up, fill the queue, and get refused.
            "OTEL_OBS_COLLECTOR_TEMPO_ENDPOINT": f"127.0.0.1:{free_port()}",
            "OTEL_OBS_COLLECTOR_LOKI_ENDPOINT": f"http://127.0.0.1:{free_port()}/otlp",
            "OTEL_OBS_COLLECTOR_QUEUE_SIZE": "3",
        },
    )
    with _redis(directory) as redis_url, stack:
        start = time.time()
        if WORKLOAD_SOURCE == "demo":
            _run_demo(directory)
        else:
            _run_workload(stack.urls["otlp_http"], redis_url, directory)
        # One more export and scrape after the workload's final flush.
        time.sleep(3)
        yield LiveData(stack.urls["prometheus"], start, time.time())
