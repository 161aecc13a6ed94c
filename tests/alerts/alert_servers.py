"""Real Prometheus and Alertmanager processes on free loopback ports, and a webhook sink."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "collector" / "rules" / "otel-obs.rules.yml"
ALERTMANAGER_CONFIG = ROOT / "collector" / "alertmanager" / "alertmanager.yml"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require(binary: str | None, name: str) -> str:
    if binary is None:
        pytest.skip(f"{name} is not installed (Debian package {name})")
    return binary


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


class Process:
    """A server process in its own temp directory; ``stop()`` ends it and only it."""

    def __init__(self, command: list[str], directory: Path, ready_url: str) -> None:
        self.log_path = directory / "process.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            command, cwd=directory, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.ready_url = ready_url

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"exited with {self.process.returncode}:\n{self.log()}")
            if http_ok(self.ready_url):
                return
            time.sleep(0.1)
        raise RuntimeError(f"not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()


def start_alertmanager(config: dict[str, Any], directory: Path) -> tuple[Process, str]:
    binary = require(ALERTMANAGER, "prometheus-alertmanager")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "alertmanager.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        binary,
        f"--config.file={directory / 'alertmanager.yml'}",
        f"--storage.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--web.external-url={url}",
        # Empty: no cluster listener (it would bind every interface).
        "--cluster.listen-address=",
    ]
    process = Process(command, directory, f"{url}/-/ready")
    process.wait_ready()
    return process, url


def start_prometheus(
    config: dict[str, Any], rules: dict[str, Any], directory: Path
) -> tuple[Process, str]:
    binary = require(shutil.which("prometheus"), "prometheus")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    config = {**config, "rule_files": [str(directory / "rules.yml")]}
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        binary,
        f"--config.file={directory / 'prometheus.yml'}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    process = Process(command, directory, f"{url}/-/ready")
    process.wait_ready()
    return process, url


class Webhook:
    """Records every notification Alertmanager posts to it, as decoded JSON."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with sink._lock:
                    sink.notifications.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.notifications)

    def __enter__(self) -> Webhook:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def webhook_variant(url: str, group_wait: str = "1s", group_interval: str = "2s") -> dict[str, Any]:
    """The shipped Alertmanager config with every receiver sending to ``url`` instead.

    Routes, grouping, inhibition and repeat intervals stay as shipped; only the receivers'
    integrations are swapped (keeping their names, which each notification carries) and
    the group timings shortened so that a test takes seconds.
    """
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    config["global"] = {"resolve_timeout": config["global"]["resolve_timeout"]}
    config["receivers"] = [
        {"name": receiver["name"], "webhook_configs": [{"url": url, "send_resolved": True}]}
        for receiver in config["receivers"]
    ]
    config["route"]["group_wait"] = group_wait
    config["route"]["group_interval"] = group_interval
    return config
