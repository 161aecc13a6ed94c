"""Start, stop and inspect the backends that run natively: otelcol-obs, Prometheus, Alertmanager.

``otel-obs stack up|down|status`` and the ``Stack`` class run the same config files as the
docker-compose stack in ``collector/``, on 127.0.0.1, with every file they write under one
directory: rendered configs, data, ``logs/<component>.log`` and ``run/<component>.pid``.
Tempo and Loki are not built by otel-obs; without them the Collector writes traces and
logs to JSON-lines files under the same directory (``collector/overlays/local.yaml``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from typing_extensions import Self

COLLECTOR_DIR = Path(__file__).resolve().parent.parent / "collector"

UNAVAILABLE_REASON = (
    "not built here: Tempo and Loki are AGPL-licensed and otel-obs does not build them; "
    "run them with docker compose (collector/docker-compose.yaml)"
)

# Scrape jobs of collector/prometheus/prometheus.yml that have a native counterpart.
_NATIVE_JOBS = {
    "otelcol": "collector_metrics",
    "otelcol-self": "collector_telemetry",
    "prometheus": "prometheus",
    "alertmanager": "alertmanager",
}

_MINIMAL_ALERTMANAGER = {
    "route": {"receiver": "log-only", "group_by": ["alertname", "service_name"]},
    "receivers": [{"name": "log-only"}],
}


class StackError(RuntimeError):
    """A component could not be started or stopped; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class Ports:
    """Loopback ports of the native stack; each one can be overridden."""

    otlp_grpc: int = 4317
    otlp_http: int = 4318
    collector_metrics: int = 8889
    collector_telemetry: int = 8888
    collector_health: int = 13133
    prometheus: int = 9090
    alertmanager: int = 9093

    @classmethod
    def free(cls) -> Ports:
        """Ports picked by the OS, for tests and for running beside another stack."""
        return cls(**{field.name: _free_port() for field in dataclasses.fields(cls)})


@dataclasses.dataclass
class ComponentStatus:
    name: str
    state: str  # running | stopped | unhealthy | unavailable
    url: str | None = None
    pid: int | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}


def collector_binary(cache_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the otelcol-obs that collector/build.sh installed, else one on PATH, else None."""
    pointer = Path(cache_dir or _default_cache_dir()).expanduser() / "otelcol-obs"
    if pointer.exists() and os.access(pointer, os.X_OK):
        return pointer.resolve()

    found = shutil.which("otelcol-obs")
    return Path(found) if found else None


class Stack:
    """The native stack rooted at ``directory``.

    ``up()`` starts what is not running yet and waits until each component answers its
    health endpoint (``start(name)`` does it for one); ``down()`` stops them (SIGTERM, then
    SIGKILL after ``stop_timeout``).
    The ports and the pids are kept in the directory, so another process (``otel-obs stack
    status``) sees the same stack. ``local_overlay=False`` runs the Collector with its
    Tempo and Loki exporters instead of the local files, with the endpoints from ``env``.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        ports: Ports | None = None,
        *,
        collector: str | os.PathLike[str] | None = None,
        collector_configs: Iterable[str | os.PathLike[str]] = (),
        config_dir: str | os.PathLike[str] | None = None,
        scrape_interval: str = "15s",
        retention: str = "30d",
        start_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        env: dict[str, str] | None = None,
        local_overlay: bool = True,
    ) -> None:
        self.directory = Path(directory or _default_stack_dir()).expanduser().resolve()
        self.config_dir = Path(config_dir or COLLECTOR_DIR)
        self.ports = ports or self._saved_ports() or Ports()
        self._collector = Path(collector) if collector else None
        self._extra_configs = [Path(path) for path in collector_configs]
        self.scrape_interval = scrape_interval
        self.retention = retention
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._env = dict(env or {})
        self.local_overlay = local_overlay

    # --- public API ------------------------------------------------------------------

    @property
    def urls(self) -> dict[str, str]:
        p = self.ports
        return {
            "otlp_grpc": f"http://127.0.0.1:{p.otlp_grpc}",
            "otlp_http": f"http://127.0.0.1:{p.otlp_http}",
            "collector_metrics": f"http://127.0.0.1:{p.collector_metrics}/metrics",
            "collector_telemetry": f"http://127.0.0.1:{p.collector_telemetry}/metrics",
            "collector_health": f"http://127.0.0.1:{p.collector_health}/",
            "prometheus": f"http://127.0.0.1:{p.prometheus}",
            "alertmanager": f"http://127.0.0.1:{p.alertmanager}",
        }

    @property
    def export_dir(self) -> Path:
        """Where the Collector writes traces.jsonl and logs.jsonl when Tempo/Loki are absent."""
        return self.directory / "collector" / "export"

    def up(self) -> list[ComponentStatus]:
        """Start every native component that is not running; return their status."""
        self._prepare_directory()
        started: list[str] = []
        try:
            for name in ("alertmanager", "collector", "prometheus"):
                if self._running_pid(name) is None:
                    self._check_ports_free(name)
                    self._start(name)
                    started.append(name)
            for name in started:
                self._wait_ready(name)
        except BaseException:
            for name in reversed(started):
                self._stop(name)
            raise
        return self.status()

    def down(self) -> list[ComponentStatus]:
        """Stop every component this stack started; return their status."""
        for name in ("prometheus", "collector", "alertmanager"):
            self._stop(name)
        return self.status()

    def status(self) -> list[ComponentStatus]:
        result = [
            self._component_status(name) for name in ("collector", "prometheus", "alertmanager")
        ]
        result += [
            ComponentStatus(name, "unavailable", reason=UNAVAILABLE_REASON)
            for name in ("tempo", "loki")
        ]
        return result

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to one component now, without waiting (crash tests)."""
        pid = self._running_pid(name)
        if pid is not None:
            os.kill(pid, sig)
            self._reap(pid, timeout=self.stop_timeout)

    def start(self, name: str) -> None:
        """Start one component (after ``kill``) and wait until it is ready."""
        self._prepare_directory()
        if self._running_pid(name) is None:
            self._check_ports_free(name)
            self._start(name)
        self._wait_ready(name)

    def __enter__(self) -> Self:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    # --- commands of each component ---------------------------------------------------

    def _command(self, name: str) -> list[str]:
        if name == "collector":
            return self._collector_command()
        if name == "prometheus":
            return self._prometheus_command()
        return self._alertmanager_command()

    def _collector_command(self) -> list[str]:
        binary = self._collector or collector_binary()
        if binary is None:
            raise StackError(
                "otelcol-obs is not built: run collector/build.sh (it needs Go), "
                "then `otel-obs stack up` again"
            )
        configs = [self.config_dir / "otelcol-obs.yaml"]
        if self.local_overlay:
            configs.append(self.config_dir / "overlays" / "local.yaml")
        command = [str(binary)]
        for config in configs + self._extra_configs:
            command += ["--config", str(config)]
        return command

    def collector_env(self) -> dict[str, str]:
        """The variables the shipped Collector config reads, set for this stack."""
        p = self.ports
        return {
            "OTEL_OBS_COLLECTOR_GRPC_ENDPOINT": f"127.0.0.1:{p.otlp_grpc}",
            "OTEL_OBS_COLLECTOR_HTTP_ENDPOINT": f"127.0.0.1:{p.otlp_http}",
            "OTEL_OBS_COLLECTOR_PROMETHEUS_ENDPOINT": f"127.0.0.1:{p.collector_metrics}",
            "OTEL_OBS_COLLECTOR_TELEMETRY_HOST": "127.0.0.1",
            "OTEL_OBS_COLLECTOR_TELEMETRY_PORT": str(p.collector_telemetry),
            "OTEL_OBS_COLLECTOR_HEALTH_ENDPOINT": f"127.0.0.1:{p.collector_health}",
            "OTEL_OBS_COLLECTOR_STORAGE_DIR": str(self.directory / "collector" / "queue"),
            "OTEL_OBS_COLLECTOR_EXPORT_DIR": str(self.export_dir),
            **self._env,
        }

    def _prometheus_command(self) -> list[str]:
        binary = _require_binary("prometheus", "apt-get install prometheus")
        return [
            binary,
            f"--config.file={self._render_prometheus_config()}",
            f"--storage.tsdb.path={self.directory / 'prometheus' / 'data'}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address=127.0.0.1:{self.ports.prometheus}",
            "--web.enable-lifecycle",
            "--web.enable-remote-write-receiver",
            "--enable-feature=exemplar-storage",
        ]

    def _alertmanager_command(self) -> list[str]:
        binary = _require_binary(
            "prometheus-alertmanager", "apt-get install prometheus-alertmanager", "alertmanager"
        )
        return [
            binary,
            f"--config.file={self._alertmanager_config()}",
            f"--storage.path={self.directory / 'alertmanager' / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.ports.alertmanager}",
            f"--web.external-url=http://127.0.0.1:{self.ports.alertmanager}",
            # An empty address turns off clustering, which would otherwise listen on all
            # interfaces.
            "--cluster.listen-address=",
        ]

    def _render_prometheus_config(self) -> Path:
        config = yaml.safe_load((self.config_dir / "prometheus" / "prometheus.yml").read_text())
        config.setdefault("global", {})["scrape_interval"] = self.scrape_interval
        config["global"]["evaluation_interval"] = self.scrape_interval
        config["rule_files"] = [str(self.config_dir / "rules" / "*.yml")]
        config["alerting"] = {
            "alertmanagers": [
                {"static_configs": [{"targets": [f"127.0.0.1:{self.ports.alertmanager}"]}]}
            ]
        }
        jobs = []
        for job in config.get("scrape_configs", []):
            port_name = _NATIVE_JOBS.get(job["job_name"])
            if port_name is None:
                continue
            job["static_configs"] = [{"targets": [f"127.0.0.1:{getattr(self.ports, port_name)}"]}]
            jobs.append(job)
        config["scrape_configs"] = jobs

        path = self.directory / "prometheus" / "prometheus.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def _alertmanager_config(self) -> Path:
        shipped = self.config_dir / "alertmanager" / "alertmanager.yml"
        if shipped.is_file():
            return shipped
        path = self.directory / "alertmanager" / "alertmanager.yml"
        path.write_text(
            "# Written by otel-obs because collector/alertmanager/alertmanager.yml is absent:\n"
            "# alerts are kept and shown in the UI, and sent nowhere.\n"
            + yaml.safe_dump(_MINIMAL_ALERTMANAGER, sort_keys=False)
        )
        return path

    # --- processes --------------------------------------------------------------------

    def _prepare_directory(self) -> None:
        for sub in (
            "logs",
            "run",
            "collector/queue",
            "collector/export",
            "prometheus/data",
            "alertmanager/data",
        ):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        state = {"ports": dataclasses.asdict(self.ports)}
        (self.directory / "stack.json").write_text(json.dumps(state, indent=2) + "\n")

    def _start(self, name: str) -> None:
        command = self._command(name)
        env = {**os.environ, **(self.collector_env() if name == "collector" else {})}
        # The child keeps its own copy of the log descriptor; ours closes after the start.
        with open(self._log_path(name), "ab") as log:
            process = subprocess.Popen(
                command,
                cwd=self.directory,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._pid_path(name).write_text(f"{process.pid}\n")

    def _wait_ready(self, name: str) -> None:
        url = self._health_url(name)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._running_pid(name) is None:
                raise StackError(f"{name} exited while starting:\n{self._log_tail(name)}")
            if _http_ok(url):
                return
            time.sleep(0.1)
        raise StackError(
            f"{name} did not answer {url} within {self.start_timeout:.0f}s:\n{self._log_tail(name)}"
        )

    def _stop(self, name: str) -> None:
        pid = self._running_pid(name)
        if pid is not None:
            _signal_group(pid, signal.SIGTERM)
            if not self._reap(pid, timeout=self.stop_timeout):
                _signal_group(pid, signal.SIGKILL)
                self._reap(pid, timeout=5.0)
        self._pid_path(name).unlink(missing_ok=True)

    def _reap(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                finished, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # started by another process: poll for its exit
                finished = 0 if _alive(pid) else pid
            if finished == pid or not _alive(pid):
                return True
            time.sleep(0.05)
        return False

    def _running_pid(self, name: str) -> int | None:
        try:
            pid = int(self._pid_path(name).read_text().strip())
        except (OSError, ValueError):
            return None
        if not _alive(pid) or not _is_our_process(pid, self.directory):
            return None
        return pid

    def _component_status(self, name: str) -> ComponentStatus:
        url = {
            "collector": self.urls["otlp_http"],
            "prometheus": self.urls["prometheus"],
            "alertmanager": self.urls["alertmanager"],
        }[name]
        pid = self._running_pid(name)
        if pid is None:
            return ComponentStatus(name, "stopped", url=url)
        if not _http_ok(self._health_url(name)):
            return ComponentStatus(
                name, "unhealthy", url=url, pid=pid, reason=f"see {self._log_path(name)}"
            )
        return ComponentStatus(name, "running", url=url, pid=pid)

    def _check_ports_free(self, name: str) -> None:
        owned = {
            "collector": (
                "otlp_grpc",
                "otlp_http",
                "collector_metrics",
                "collector_telemetry",
                "collector_health",
            ),
            "prometheus": ("prometheus",),
            "alertmanager": ("alertmanager",),
        }[name]
        for port_name in owned:
            port = getattr(self.ports, port_name)
            if not _port_free(port):
                option = "--" + port_name.replace("_", "-") + "-port"
                raise StackError(
                    f"port {port} ({port_name} of {name}) is in use on 127.0.0.1: "
                    f"stop what uses it or choose another port with {option}"
                )

    def _health_url(self, name: str) -> str:
        if name == "collector":
            return self.urls["collector_health"]
        return self.urls[name] + "/-/ready"

    def _saved_ports(self) -> Ports | None:
        try:
            saved = json.loads((self.directory / "stack.json").read_text())["ports"]
            return Ports(**saved)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _pid_path(self, name: str) -> Path:
        return self.directory / "run" / f"{name}.pid"

    def _log_path(self, name: str) -> Path:
        return self.directory / "logs" / f"{name}.log"

    def _log_tail(self, name: str, lines: int = 20) -> str:
        try:
            return "\n".join(self._log_path(name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# --- helpers ---------------------------------------------------------------------------


def _default_stack_dir() -> str:
    try:
        from otel_obs.config import get_settings

        return get_settings().stack_dir
    except Exception:  # noqa: BLE001 (settings absent or invalid: the documented default)
        return os.environ.get("OTEL_OBS_STACK_DIR") or "./.otel-obs/stack"


def _default_cache_dir() -> str:
    try:
        from otel_obs.config import get_settings

        return get_settings().cache_dir
    except Exception:  # noqa: BLE001 (settings absent or invalid: the documented default)
        return os.environ.get("OTEL_OBS_CACHE_DIR") or "~/.cache/otel-obs"


def _require_binary(name: str, install_hint: str, *alternatives: str) -> str:
    for candidate in (name, *alternatives):
        found = shutil.which(candidate)
        if found:
            return found
    raise StackError(f"{name} is not installed ({install_hint})")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child is not running
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _is_our_process(pid: int, directory: Path) -> bool:
    """Whether ``pid`` is still a process of this stack, not a reused pid."""
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return True  # no /proc to ask: trust the pid file
    return Path(cwd) == directory


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


# --- command line ----------------------------------------------------------------------


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument(
        "--dir", dest="directory", help="stack directory (default: OTEL_OBS_STACK_DIR)"
    )
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    defaults = Ports()
    for field in dataclasses.fields(Ports):
        option = "--" + field.name.replace("_", "-") + "-port"
        parser.add_argument(
            option, type=int, dest=field.name, help=f"default {getattr(defaults, field.name)}"
        )


def run_stack(args: argparse.Namespace) -> int:
    overrides = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(Ports)
        if getattr(args, field.name, None) is not None
    }
    stack = Stack(args.directory)
    if overrides:
        stack.ports = dataclasses.replace(stack.ports, **overrides)

    try:
        if args.action == "up":
            statuses = stack.up()
        elif args.action == "down":
            statuses = stack.down()
        else:
            statuses = stack.status()
    except StackError as error:
        print(f"otel-obs stack {args.action}: {error}", file=sys.stderr)
        return 1

    _print_status(stack, statuses, as_json=args.json)
    if args.action == "up":
        return 0 if all(s.state in ("running", "unavailable") for s in statuses) else 1
    return 0


def _print_status(stack: Stack, statuses: list[ComponentStatus], as_json: bool) -> None:
    if as_json:
        payload = {"dir": str(stack.directory), "components": [s.as_dict() for s in statuses]}
        print(json.dumps(payload, indent=2))
        return

    print(f"stack directory: {stack.directory}")
    for s in statuses:
        where = s.url or ""
        detail = f"  ({s.reason})" if s.reason else ""
        print(f"  {s.name:<13}{s.state:<12}{where}{detail}")
