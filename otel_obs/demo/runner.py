"""Starts the demo's processes, runs the workload, stops everything within a bound.

Processes: the LLM server and an OTLP receiver in this process; a broker (a Redis server
started for the demo, or kombu's filesystem transport when there is none); the API under
uvicorn and a Celery worker (prefork, two children), both started the zero-code way with
``otel-obs run``. Every one of them sends its telemetry to the receiver, which forwards each
export unchanged to the stack's Collector when one runs.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otel_obs.demo.summary import API_SERVICE, WORKER_SERVICE

METRIC_EXPORT_INTERVAL_MS = 1000
START_TIMEOUT_S = 90.0
DRAIN_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
STACK_OTLP_HTTP = "http://127.0.0.1:4318"

# Variables of the caller that would send the demo's telemetry somewhere else or switch it off.
_STRIPPED_PREFIXES = (
    "OTEL_EXPORTER_",
    "OTEL_TRACES_",
    "OTEL_METRICS_",
    "OTEL_LOGS_",
    "OTEL_BSP_",
    "OTEL_BLRP_",
)
_STRIPPED = (
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS",
    "OTEL_METRIC_EXPORT_INTERVAL",
)


class DemoError(RuntimeError):
    """The demo could not run; the message says which part failed and where to look."""


def say(message: str) -> None:
    """Progress for the person watching: always on stderr, so stdout stays the summary."""
    print(f"otel-obs demo: {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- where telemetry goes ----------------------------------------------------------------


@dataclass
class Destination:
    """The stack's Collector the receiver forwards to, if one runs."""

    collector_url: str | None = None
    prometheus_url: str | None = None
    export_dir: str | None = None
    how_found: str = ""


def _accepts_otlp(base_url: str) -> bool:
    request = urllib.request.Request(
        f"{base_url}/v1/traces",
        data=b"",
        method="POST",
        headers={"Content-Type": "application/x-protobuf"},
    )
    try:
        with urllib.request.urlopen(request, timeout=1.0) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def find_stack() -> Destination:
    """The running stack, from ``otel-obs stack status``, else an OTLP/HTTP Collector on 4318."""
    try:
        from otel_obs.stack import Stack

        stack = Stack()
        states = {s.name: s for s in stack.status()}
    except (ImportError, OSError, ValueError, RuntimeError):
        states = {}  # no stack module or an unreadable stack directory: probe the port
    collector = states.get("collector")
    if collector is not None and collector.state == "running" and collector.url:
        prometheus = states.get("prometheus")
        return Destination(
            collector_url=collector.url,
            prometheus_url=prometheus.url if prometheus and prometheus.state == "running" else None,
            export_dir=str(stack.export_dir),
            how_found=f"otel-obs stack in {stack.directory}",
        )
    if _accepts_otlp(STACK_OTLP_HTTP):
        return Destination(
            collector_url=STACK_OTLP_HTTP, how_found="an OTLP/HTTP Collector on 127.0.0.1:4318"
        )
    return Destination()


# --- the broker --------------------------------------------------------------------------


@dataclass
class Broker:
    kind: str  # "redis" or "filesystem"
    url: str
    description: str
    options: dict[str, Any] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process, STOP_TIMEOUT_S)


def _redis_answers(url: str, timeout: float = 1.0) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    except ValueError:  # not a Redis URL
        return False
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def start_broker(workdir: Path, kind: str = "auto", redis_url: str | None = None) -> Broker:
    """A Redis given by the caller, else a redis-server of our own, else the filesystem."""
    if redis_url:
        if not _redis_answers(redis_url):
            raise DemoError(f"no Redis answers at {redis_url}")
        return Broker("redis", redis_url, f"Redis at {redis_url} (given with --redis-url)")
    if kind in ("auto", "redis"):
        broker = _start_redis(workdir)
        if broker is not None:
            return broker
        if kind == "redis":
            raise DemoError(f"redis-server could not be started; see {workdir / 'redis.log'}")
    return _filesystem_broker(
        workdir,
        "chosen with --broker filesystem" if kind == "filesystem" else "no Redis server found",
    )


def _start_redis(workdir: Path) -> Broker | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = free_port()
    data = workdir / "redis"
    data.mkdir()
    command = [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--loglevel",
        "warning",
    ]
    with open(workdir / "redis.log", "wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"redis://127.0.0.1:{port}/0"
    if _wait(lambda: _redis_answers(url, 0.5), 15.0, process):
        return Broker(
            "redis",
            url,
            f"Redis ({binary} on 127.0.0.1:{port}, started for the demo)",
            process=process,
        )
    _stop(process, 5.0)
    say(f"redis-server did not start (see {workdir / 'redis.log'})")
    return None


def _filesystem_broker(workdir: Path, why: str) -> Broker:
    folder = workdir / "broker"
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True)
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
        # Seconds between looks at the queue folder: short, so tasks start soon after publish.
        "polling_interval": 0.1,
    }
    return Broker(
        "filesystem",
        "filesystem://",
        f"kombu filesystem transport in {folder} ({why})",
        options=options,
    )


# --- the service processes ---------------------------------------------------------------


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no output)"
        return "\n".join(text[-lines:]) or "(no output)"


def _console_script(name: str) -> list[str]:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return [str(beside)]
    module = {"otel-obs": "otel_obs.cli", "uvicorn": "uvicorn", "celery": "celery"}[name]
    return [sys.executable, "-m", module]


def service_env(
    service_name: str, endpoint: str, llm_url: str, broker: Broker, workdir: Path
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_STRIPPED_PREFIXES) and k not in _STRIPPED
    }
    env.update(
        OTEL_SERVICE_NAME=service_name,
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=demo",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE="cumulative",
        OTEL_METRIC_EXPORT_INTERVAL=str(METRIC_EXPORT_INTERVAL_MS),
        OTEL_BSP_SCHEDULE_DELAY="200",
        OTEL_BLRP_SCHEDULE_DELAY="200",
        OTEL_OBS_LOG_FORMAT="json",
        PYTHONUNBUFFERED="1",
        ADPLATFORM_LLM_URL=llm_url,
        ADPLATFORM_BROKER_URL=broker.url,
        ADPLATFORM_BROKER_OPTIONS=json.dumps(broker.options),
        ADPLATFORM_WORKER_READY_FILE=str(workdir / "worker.ready"),
    )
    return env


def _spawn(name: str, command: list[str], env: dict[str, str], workdir: Path) -> Service:
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Service(name, process, log_path)


def start_api(env: dict[str, str], workdir: Path) -> tuple[Service, str]:
    port = free_port()
    command = [
        *_console_script("otel-obs"),
        "run",
        "--",
        *_console_script("uvicorn"),
        "otel_obs.demo.app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    return _spawn("api", command, env, workdir), f"http://127.0.0.1:{port}"


def start_worker(env: dict[str, str], workdir: Path) -> Service:
    command = [
        *_console_script("otel-obs"),
        "run",
        "--",
        *_console_script("celery"),
        "-A",
        "otel_obs.demo.tasks",
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        "2",
        "--loglevel",
        "INFO",
        "--hostname",
        "adplatform@demo",
        "--queues",
        "adplatform",
        # Gossip, mingle and heartbeats talk between workers; there is one worker here, and
        # the filesystem transport has no broadcast for them.
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    return _spawn("worker", command, env, workdir)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _wait(
    ready: Callable[[], bool], timeout: float, process: subprocess.Popen[bytes] | None = None
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        if process is not None and process.poll() is not None:
            return False
        time.sleep(0.2)
    return ready()


def wait_ready(api: Service, api_url: str, worker: Service, workdir: Path) -> None:
    checks = (
        (api, lambda: _http_ok(f"{api_url}/health"), "answer on /health"),
        (worker, lambda: (workdir / "worker.ready").exists(), "report ready"),
    )
    for service, ready, what in checks:
        if not _wait(ready, START_TIMEOUT_S, service.process):
            state = (
                "exited"
                if not service.alive()
                else f"did not {what} within {START_TIMEOUT_S:.0f} s"
            )
            raise DemoError(
                f"the {service.name} process {state}; its output ends with:\n{service.log_tail()}"
            )


def _stop(process: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM to the process (its own clean shutdown), SIGKILL to its group after ``timeout``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        # The group was made for this process (start_new_session): its children go with it.
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait(5)


def stop_services(services: list[Service]) -> dict[str, Any]:
    """Stop all services at once, each within ``STOP_TIMEOUT_S``; report how each ended."""
    started = time.monotonic()
    for service in services:
        if service.alive():
            service.process.send_signal(signal.SIGTERM)
    outcome = {}
    for service in services:
        remaining = max(0.1, STOP_TIMEOUT_S - (time.monotonic() - started))
        killed = False
        try:
            service.process.wait(remaining)
        except subprocess.TimeoutExpired:
            killed = True
        _stop(service.process, 0)
        code = service.process.returncode
        outcome[service.name] = {
            "exit_code": code,
            # uvicorn ends by raising the SIGTERM it handled again, so -15 is a clean exit too.
            "clean": not killed and code in (0, -signal.SIGTERM),
            "killed_after_timeout": killed,
        }
    outcome["seconds"] = round(time.monotonic() - started, 2)
    return outcome


# --- waiting for the work to finish ------------------------------------------------------


def finished_tasks(spans: list[Any]) -> set[str]:
    """Ids of tasks whose last run ended (succeeded or failed for good, not retried)."""
    done = set()
    for span in spans:
        if span.kind != 5 or span.resource.get("service.name") != WORKER_SERVICE:
            continue
        task_id = span.attributes.get("messaging.message.id")
        if task_id and str(span.attributes.get("celery.state", "")).upper() != "RETRY":
            done.add(str(task_id))
    return done


def drain(receiver: Any, task_ids: list[str], timeout: float = DRAIN_TIMEOUT_S) -> int:
    """Wait until every enqueued task's run reached the receiver; return how many did."""
    wanted = set(task_ids)
    receiver.wait_for(lambda r: wanted <= finished_tasks(r.spans()), timeout=timeout)
    # One more export interval, so the metrics of the last tasks are in too.
    time.sleep(2.5 * METRIC_EXPORT_INTERVAL_MS / 1000)
    return len(wanted & finished_tasks(receiver.spans()))


# --- the whole run -----------------------------------------------------------------------


@dataclass
class Options:
    duration: float = 30.0
    as_json: bool = False
    broker: str = "auto"
    redis_url: str | None = None
    keep: bool = False
    use_stack: bool = True


def run(options: Options) -> tuple[dict[str, Any] | None, int]:
    """Run the demo end to end; return the summary (None if it never ran) and the exit code."""
    from otel_obs.demo.llm_server import LLMServer
    from otel_obs.receiver import OTLPReceiver

    workdir = Path(tempfile.mkdtemp(prefix="otel-obs-demo-"))
    destination = (
        find_stack() if options.use_stack else Destination(how_found="switched off with --no-stack")
    )
    receiver = OTLPReceiver(forward_to=destination.collector_url).start()
    llm_server = LLMServer().start()
    # The server keeps every request it answers; the demo reads none, so keep only the last few.
    llm_server.requests = collections.deque(maxlen=100)
    broker: Broker | None = None
    services: list[Service] = []
    ok = False
    try:
        say(
            f"telemetry goes to {receiver.endpoint}"
            + (
                f", forwarded to {destination.collector_url}"
                if destination.collector_url
                else " (no stack running)"
            )
        )
        broker = start_broker(workdir, options.broker, options.redis_url)
        say(f"broker: {broker.description}")
        summary = _run_services(
            options, workdir, destination, receiver, llm_server, broker, services
        )
        ok = True
        return summary, _exit_code(summary)
    except DemoError as error:
        say(f"failed: {error}")
        return None, 1
    finally:
        if services and any(s.alive() for s in services):
            stop_services(services)
        if broker is not None:
            broker.stop()
        llm_server.stop()
        receiver.stop()
        if ok and not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"process logs kept in {workdir}")


def _run_services(
    options: Options,
    workdir: Path,
    destination: Destination,
    receiver: Any,
    llm_server: Any,
    broker: Broker,
    services: list[Service],
) -> dict[str, Any]:
    from otel_obs.demo import queries, summary, workload

    worker_env = service_env(WORKER_SERVICE, receiver.endpoint, llm_server.url, broker, workdir)
    api_env = service_env(API_SERVICE, receiver.endpoint, llm_server.url, broker, workdir)
    say("starting the API (uvicorn) and the worker (celery, prefork x2) with `otel-obs run`")
    api, api_url = start_api(api_env, workdir)
    services.append(api)
    services.append(start_worker(worker_env, workdir))
    wait_ready(api, api_url, services[1], workdir)

    say(f"driving {api_url} for {options.duration:g} s")
    progress = workload.Progress(options.duration, enabled=not options.as_json)
    result = workload.Workload(api_url, options.duration).run(progress)
    if not any(200 <= call.status < 300 for call in result.calls):
        raise DemoError(f"no request succeeded; the API's output ends with:\n{api.log_tail()}")

    say(f"waiting for {len(result.video_tasks)} video tasks to finish")
    finished = drain(receiver, result.video_tasks)
    say("stopping the API and the worker")
    shutdown = stop_services(services)

    built = summary.build(
        summary.Telemetry.from_receiver(receiver),
        seconds=result.seconds,
        personal_data=result.personal_data,
    )
    built["demo"] = {
        "workload": workload.describe(result),
        "tasks": {"enqueued": len(result.video_tasks), "finished": finished},
        "broker": {"kind": broker.kind, "description": broker.description},
        "telemetry": {
            "receiver": receiver.endpoint,
            "forwarded_to": destination.collector_url,
            "found": destination.how_found or None,
            "forward_failures": receiver.forward_failures,
            "collector_export_dir": destination.export_dir,
        },
        "llm_server": llm_server.url,
        "shutdown": shutdown,
    }
    built["queries"] = queries.build(built["trace"]["trace_id"], destination.prometheus_url)
    return built


def problems(summary: dict[str, Any]) -> list[str]:
    """What is missing from a summary for the demo to have shown everything it promises."""
    found = []
    if not summary["trace"]["spans"]:
        found.append("no trace went from a request through a Celery task to an LLM call")
    if not summary["http"]["routes"]:
        found.append("no http.server.request.duration points arrived from the API")
    if not summary["llm"]["models"]:
        found.append("no gen_ai.client.* metrics arrived")
    if summary["masking"]["leaked"]:
        found.append(f"{summary['masking']['leaked']} personal values left a process unmasked")
    return found


def _exit_code(summary: dict[str, Any]) -> int:
    missing = problems(summary)
    for problem in missing:
        say(f"incomplete: {problem}")
    return 1 if missing else 0
