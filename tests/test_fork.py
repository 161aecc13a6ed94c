"""Fork safety: every worker of a pre-forking server exports, as its own instance."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from clean_env import clean_environment

from otel_obs.receiver import OTLPReceiver

BIN = Path(sys.executable).parent

FORK_AFTER_SETUP = """
import logging, os, otel_obs
from opentelemetry import metrics, trace
otel_obs.configure()
tracer = trace.get_tracer("fork")
counter = metrics.get_meter("fork").create_counter("fork.items")
log = logging.getLogger("fork")
counter.add(5, {"who": "before fork"})
child = os.fork()
who = "child" if child == 0 else "parent"
with tracer.start_as_current_span(who):
    log.warning(who)
counter.add(1, {"who": who})
if child == 0:
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(100)]
fds = len(os.listdir("/proc/self/fd"))
print(who, os.getpid(), fds, flush=True)
if child == 0:
    otel_obs.shutdown()
    os._exit(0)
os.waitpid(child, 0)
"""


def test_forked_child_exports_as_its_own_instance_and_process(otlp_receiver, run_python) -> None:
    # Celery's hooks are left out: the child's own series must not depend on them.
    env = {"OTEL_SERVICE_NAME": "forker", "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
           "OTEL_OBS_LOG_STDOUT": "false", "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "celery"}

    code, out, err, _ = run_python(FORK_AFTER_SETUP, env=env)

    assert code == 0, err
    printed = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    pids = {who: int(values[0]) for who, values in printed.items()}
    spans = {span.name: span.resource for span in otlp_receiver.spans()}
    logs = {log.body: log.resource for log in otlp_receiver.logs()}
    points = otlp_receiver.points("fork.items")
    by_who = {p.attributes["who"]: p for p in points}
    assert set(spans) == set(logs) == {"parent", "child"}
    for who in ("parent", "child"):
        for resource in (spans[who], logs[who], by_who[who].resource):
            assert resource["process.pid"] == pids[who]
            assert resource["service.instance.id"] == spans[who]["service.instance.id"]
    assert spans["parent"]["service.instance.id"] != spans["child"]["service.instance.id"]
    # The child starts its own series: what the parent counted before the fork is exported
    # once, by the parent, and never again by the child.
    assert by_who["child"].value == 1
    before = [p for p in points if p.attributes["who"] == "before fork"]
    assert [(p.value, p.resource["process.pid"]) for p in before] == [(5, pids["parent"])]
    # The child's system metrics describe the child, which holds 100 more open files.
    open_files = {p.resource["process.pid"]: p.value
                  for p in otlp_receiver.points("process.open_file_descriptor.count")}
    child_fds = int(printed["child"][1])
    assert child_fds >= 100
    assert abs(open_files[pids["child"]] - child_fds) <= 3, (open_files, printed)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())["pid"]


def _serve(command: list[str], env: dict[str, str], cwd: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen(command, env=clean_environment(env), cwd=cwd,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail("the server exited: " + server.communicate()[1][-2000:])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    pytest.fail("the server did not start")


def _load_both_workers(url: str) -> tuple[set[int], int]:
    """Send requests until both workers answered, then one round more; return pids and count."""
    pids: set[int] = set()
    sent = 0
    deadline = time.monotonic() + 30
    with ThreadPoolExecutor(max_workers=6) as pool:
        while time.monotonic() < deadline:
            pids.update(pool.map(_get, [url] * 30))
            sent += 30
            if len(pids) >= 2:
                time.sleep(0.5)  # let a collection cycle pass, so each series has several points
                pids.update(pool.map(_get, [url] * 30))
                return pids, sent + 30
    pytest.fail(f"only workers {pids} answered")


def _counted(receiver: OTLPReceiver) -> float:
    latest: dict[tuple, float] = {}
    for point in receiver.points("worker.requests"):
        key = (point.resource["service.instance.id"], tuple(sorted(point.attributes.items())))
        latest[key] = max(latest.get(key, 0), point.value)
    return sum(latest.values())


def _handled(receiver: OTLPReceiver) -> list:
    return [span for span in receiver.spans() if span.name == "handle"]


def _assert_workers_exported(receiver: OTLPReceiver, pids: set[int], sent: int) -> None:
    assert receiver.wait_for(
        lambda r: len(_handled(r)) == sent and _counted(r) == sent, timeout=20
    ), (len(_handled(receiver)), _counted(receiver), sent)
    instances: dict[int, set[str]] = defaultdict(set)
    for span in receiver.spans():
        if span.name == "handle":
            instances[span.resource["process.pid"]].add(span.resource["service.instance.id"])
    assert all(len(ids) == 1 for ids in instances.values()), instances
    worker_ids = [next(iter(instances[pid])) for pid in pids]
    assert len(set(worker_ids)) == len(pids)  # each worker its own service.instance.id

    series: dict[tuple, list] = defaultdict(list)
    for point in receiver.points("worker.requests"):
        key = (point.resource["service.instance.id"], tuple(sorted(point.attributes.items())))
        series[key].append(point)
    assert {key[0] for key in series} >= set(worker_ids)
    for key, points in series.items():
        points.sort(key=lambda p: p.time_ns)
        assert len({p.start_ns for p in points}) == 1, key  # one cumulative series, no reset
        values = [p.value for p in points]
        assert values == sorted(values), (key, values)
    assert {p.resource["process.pid"] for p in receiver.points("worker.requests")} == pids


ASGI_APP = """
import os
from fastapi import FastAPI
from opentelemetry import metrics, trace

app = FastAPI()
requests = metrics.get_meter("worker").create_counter("worker.requests")

@app.get("/pid")
def pid():
    with trace.get_tracer("worker").start_as_current_span("handle"):
        requests.add(1, {"route": "/pid"})
    return {"pid": os.getpid()}
"""

WSGI_APP = """
import json, os
import otel_obs
from opentelemetry import metrics, trace

otel_obs.configure()  # in the master, before gunicorn forks the workers
requests = metrics.get_meter("worker").create_counter("worker.requests")
tracer = trace.get_tracer("worker")

def app(environ, start_response):
    with tracer.start_as_current_span("handle"):
        requests.add(1, {"route": "/pid"})
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"pid": os.getpid()}).encode()]
"""


def _worker_env(receiver: OTLPReceiver, tmp_path: Path) -> dict[str, str]:
    return {
        "OTEL_SERVICE_NAME": "workers",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_METRIC_EXPORT_INTERVAL": "300",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_OBS_LOG_STDOUT": "false",
        "OTEL_OBS_SYSTEM_METRICS": "false",
        "OTEL_OBS_SHUTDOWN_TIMEOUT": "2",
        "PYTHONPATH": str(tmp_path),
    }


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()


def test_uvicorn_workers_under_otel_obs_run_export_as_distinct_instances(
    otlp_receiver, tmp_path: Path
) -> None:
    (tmp_path / "forkapp.py").write_text(ASGI_APP)
    port = _free_port()
    command = [str(BIN / "otel-obs"), "run", "--", str(BIN / "uvicorn"), "forkapp:app",
               "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    server = _serve(command, _worker_env(otlp_receiver, tmp_path), tmp_path, port)
    try:
        pids, sent = _load_both_workers(f"http://127.0.0.1:{port}/pid")
        _assert_workers_exported(otlp_receiver, pids, sent)
    finally:
        _stop(server)


def test_gunicorn_preload_workers_export_as_distinct_instances(
    otlp_receiver, tmp_path: Path
) -> None:
    if not (BIN / "gunicorn").exists():
        pytest.skip("gunicorn is not installed (pip install -e .[dev])")
    (tmp_path / "wsgiapp.py").write_text(WSGI_APP)
    port = _free_port()
    command = [str(BIN / "gunicorn"), "--preload", "--workers", "2", "--bind",
               f"127.0.0.1:{port}", "wsgiapp:app"]
    server = _serve(command, _worker_env(otlp_receiver, tmp_path), tmp_path, port)
    try:
        pids, sent = _load_both_workers(f"http://127.0.0.1:{port}/pid")
        _assert_workers_exported(otlp_receiver, pids, sent)
    finally:
        _stop(server)
