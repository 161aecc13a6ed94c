"""Real processes for tests: Redis, uvicorn and Celery workers on loopback, always stopped.

Every process starts in its own session so that stopping it also stops its children
(uvicorn workers, Celery pool processes); waits are bounded and fail with the process's
own output.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parent / "apps"
REDIS_SERVER = "/usr/bin/redis-server"
# Prefix that starts a command the zero-code way.
OTEL_OBS_RUN = [str(Path(sys.executable).parent / "otel-obs"), "run", "--"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    output = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
    raise TimeoutError(f"{what} not ready after {timeout}s\n{output}")


class Process:
    """A child process in its own session, with its output in a log file."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, cwd: Path | None = None):
        self.log = log
        self._log_file = log.open("wb")
        self.popen = subprocess.Popen(
            argv,
            env=env,
            cwd=str(cwd or REPO),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Send ``sig`` to the process group, wait, then kill what is left."""
        try:
            if self.alive():
                os.killpg(self.pid, sig)
                try:
                    self.popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=5)
            self._log_file.close()
        return self.popen.returncode


def telemetry_env(endpoint: str, service: str, **extra: str) -> dict[str, str]:
    """Environment for a child that exports OTLP/HTTP to ``endpoint`` quickly."""
    env = dict(os.environ)
    env.update(
        OTEL_SERVICE_NAME=service,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_BSP_SCHEDULE_DELAY="200",
        OTEL_METRIC_EXPORT_INTERVAL="500",
        OTEL_LOGS_EXPORTER="none",
        PYTHONPATH=os.pathsep.join(filter(None, [str(APPS), env.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def redis_server(tmp: Path) -> Iterator[str]:
    """A throwaway Redis on 127.0.0.1, no persistence; yields its URL."""
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="redis-", dir=tmp))
    process = Process(
        [
            REDIS_SERVER,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data),
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ],
        env=dict(os.environ),
        log=tmp / f"redis-{port}.log",
    )
    try:
        wait_until(lambda: _redis_answers(port), 10, "redis-server", process.log)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.stop()


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_uvicorn(
    app: str, env: dict[str, str], tmp: Path, workers: int = 1, launcher: list[str] | None = None
) -> tuple[Process, str]:
    """Start ``uvicorn app`` from the test apps directory; return it and its base URL."""
    port = free_port()
    argv = [
        *(launcher or []),
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    process = Process(argv, env, tmp / f"uvicorn-{port}.log", cwd=APPS)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(f"{base}/health"), 30, "uvicorn", process.log)
    except BaseException:
        process.stop()
        raise
    return process, base


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def start_celery_worker(
    module: str,
    env: dict[str, str],
    tmp: Path,
    *extra: str,
    name: str = "worker",
    launcher: list[str] | None = None,
) -> Process:
    """Start a prefork Celery worker (concurrency 2) and wait until it is ready."""
    argv = [
        *(launcher or []),
        sys.executable,
        "-m",
        "celery",
        "-A",
        module,
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        "2",
        "--loglevel",
        "INFO",
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
        "-n",
        f"{name}@%h",
        *extra,
    ]
    process = Process(argv, env, tmp / f"celery-{name}.log", cwd=APPS)
    try:
        wait_until(lambda: "ready." in process.output(), 40, "celery worker", process.log)
    except BaseException:
        process.stop()
        raise
    return process
