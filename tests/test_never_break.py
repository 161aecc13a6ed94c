"""Telemetry never breaks the host: a dead or silent Collector, failing exporters and hooks."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clean_env import clean_environment

from otel_obs.receiver import BlackholeServer, OTLPReceiver

SHUTDOWN_TIMEOUT = 2.0
ITEMS = 50_000

# Emits ITEMS spans and ITEMS log records, reports speed, memory and queues, exits with 3.
EMITTER = """
import gc, json, logging, sys, time
import otel_obs
from opentelemetry import trace

def rss_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))

def queues():
    return [(len(p._queue), p._max_queue_size) for p in gc.get_objects()
            if type(p).__name__ == "BatchProcessor"]

otel_obs.configure()
tracer, log = trace.get_tracer("load"), logging.getLogger("load")
for _ in range(200):  # warm-up, so that first-use costs do not count as growth
    with tracer.start_as_current_span("warm-up"):
        log.info("warm-up")
rss_before, started = rss_kib(), time.perf_counter()
for i in range(ITEMS):
    with tracer.start_as_current_span("work") as span:
        span.set_attribute("item", i)
        log.info("item done")
elapsed = time.perf_counter() - started
print(json.dumps({"elapsed": elapsed, "rss_growth_kib": rss_kib() - rss_before,
                  "queues": queues(), "health": otel_obs.setup.export_health(),
                  "ended_at": time.time()}), flush=True)
sys.exit(3)
""".replace("ITEMS", str(ITEMS))


def _closed_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens once the socket is closed


def _emit(run_python, env: dict[str, str]) -> tuple[int, dict, str, float]:
    import json

    base = {
        "OTEL_SERVICE_NAME": "load",
        "OTEL_OBS_LOG_STDOUT": "false",
        "OTEL_OBS_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
        "OTEL_OBS_SYSTEM_METRICS": "false",
    }
    code, out, err, _ = run_python(EMITTER, env={**base, **env}, timeout=120)
    exited_at = time.time()
    assert out.strip(), err
    report = json.loads(out.strip().splitlines()[-1])
    return code, report, err, exited_at - report["ended_at"]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> dict[str, float]:
    """Loop time with telemetry off and with a healthy receiver, for the ratios below."""
    from clean_env import run_code

    _, disabled, _, _ = _emit(run_code, {"OTEL_SDK_DISABLED": "true"})
    with OTLPReceiver() as receiver:
        _, healthy, _, _ = _emit(run_code, {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint})
    return {"disabled": disabled["elapsed"], "healthy": healthy["elapsed"]}


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
@pytest.mark.parametrize("collector", ["closed port", "blackhole"])
def test_dead_collector_does_not_slow_grow_flood_or_hold_the_process(
    baseline, run_python, protocol: str, collector: str
) -> None:
    with BlackholeServer() as blackhole:
        endpoint = blackhole.endpoint if collector == "blackhole" else _closed_endpoint()
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol}
        code, report, err, exit_delay = _emit(run_python, env)

    assert code == 3, err  # the application's own exit code
    assert exit_delay <= SHUTDOWN_TIMEOUT + 1.0
    # Export runs off the application's thread: the loop keeps the speed it has with a
    # healthy receiver. The bounds are generous ratios, never absolute times.
    assert report["elapsed"] <= 3 * baseline["healthy"], (report["elapsed"], baseline)
    assert report["elapsed"] <= 40 * baseline["disabled"], (report["elapsed"], baseline)
    for length, maximum in report["queues"]:
        assert length <= maximum
    # What was dropped is counted: everything but one full queue and one batch in flight.
    emitted = ITEMS + 200
    for kind in ("traces", "logs"):
        assert report["health"][kind]["dropped"] >= emitted - 2048 - 512, report["health"]
    # 100,000 items held in memory would take well over 100 MB; the queues hold 2,048.
    assert report["rss_growth_kib"] < 60_000, report
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) <= 10, lines  # rate-limited, not a line per span or record
    assert "Traceback" not in err


B12_SCRIPT = """
import logging
import otel_obs
from opentelemetry import trace

def main():
    otel_obs.configure()
    tracer = trace.get_tracer("b12")
    with tracer.start_as_current_span("parent"):
        tracer.start_span("child-1").end()
        tracer.start_span("child-2").end()
        logging.getLogger("b12").warning("about to return")
    print(__import__("time").time(), flush=True)

main()
"""


def _b12_env(endpoint: str) -> dict[str, str]:
    return {
        "OTEL_SERVICE_NAME": "b12",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_OBS_LOG_STDOUT": "false",
        "OTEL_OBS_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
    }


def test_everything_emitted_before_return_arrives_before_exit(otlp_receiver, run_python) -> None:
    code, _, err, _ = run_python(B12_SCRIPT, env=_b12_env(otlp_receiver.endpoint))

    assert code == 0, err
    # Nothing is awaited here: what arrived, arrived before the process exited.
    assert sorted(span.name for span in otlp_receiver.spans()) == ["child-1", "child-2", "parent"]
    assert [log.body for log in otlp_receiver.logs()] == ["about to return"]


def test_blackholed_collector_exit_is_bounded_with_one_warning(run_python) -> None:
    with BlackholeServer() as blackhole:
        code, out, err, _ = run_python(B12_SCRIPT, env=_b12_env(blackhole.endpoint))
        exited_at = time.time()

    assert code == 0, err
    assert exited_at - float(out.split()[0]) <= SHUTDOWN_TIMEOUT + 1.0
    dropped = [line for line in err.splitlines() if "dropped" in line]
    assert len(dropped) == 1, err
    assert "not yet exported was dropped" in dropped[0]


WEB_APP = """
import asyncio
from fastapi import FastAPI

app = FastAPI()

@app.get("/slow")
async def slow():
    await asyncio.sleep(1.0)
    return {"done": True}
"""


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail("the server did not start")


@pytest.mark.parametrize("collector", ["blackhole", "healthy"])
def test_sigterm_to_a_web_worker_exits_within_the_bound_and_finishes_requests(
    tmp_path: Path, collector: str
) -> None:
    import threading
    import urllib.request

    (tmp_path / "b12app.py").write_text(WEB_APP)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with BlackholeServer() as blackhole, OTLPReceiver() as receiver:
        endpoint = blackhole.endpoint if collector == "blackhole" else receiver.endpoint
        env = clean_environment({**_b12_env(endpoint), "PYTHONPATH": str(tmp_path)})
        command = [str(Path(sys.executable).with_name("otel-obs")), "run", "--",
                   sys.executable, "-m", "uvicorn", "b12app:app", "--port", str(port),
                   "--host", "127.0.0.1"]
        server = subprocess.Popen(command, env=env, cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait_for_port(port, server)
            answers: list[int] = []
            url = f"http://127.0.0.1:{port}/slow"
            client = threading.Thread(
                target=lambda: answers.append(urllib.request.urlopen(url, timeout=10).status)
            )
            client.start()
            time.sleep(0.3)  # the request is in flight
            server.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            _, err = server.communicate(timeout=SHUTDOWN_TIMEOUT + 15)
            took = time.monotonic() - signalled
            client.join(10)
        finally:
            if server.poll() is None:
                server.kill()
                server.communicate()
        spans = [span.name for span in receiver.spans()]

    assert answers == [200]  # the in-flight request was not cut short
    # uvicorn ends by raising SIGTERM again once it has stopped: the same code as without
    # telemetry.
    assert server.returncode == -signal.SIGTERM, err
    # uvicorn waits for the in-flight request (1 s), then telemetry gets its budget.
    assert took <= 1.0 + SHUTDOWN_TIMEOUT + 1.0
    if collector == "healthy":
        assert "GET /slow" in spans  # flushed on the way out, not lost with the process


B13_SCRIPT = """
import logging, time
import otel_obs
otel_obs.configure()
logging.warning("fixture warning")
cpu, wall = time.process_time(), time.monotonic()
time.sleep(3)
print("idle cpu share", (time.process_time() - cpu) / (time.monotonic() - wall), flush=True)
import os
os._exit(0)  # leave out the shutdown: only the idle window is under test
"""


@pytest.mark.parametrize("disabled", [False, True])
def test_failing_log_export_does_not_feed_on_itself(run_python, disabled: bool) -> None:
    env = {
        "OTEL_SERVICE_NAME": "b13",
        "OTEL_EXPORTER_OTLP_ENDPOINT": _closed_endpoint(),
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
        "OTEL_BLRP_SCHEDULE_DELAY": "100",
        "OTEL_OBS_LOG_FORMAT": "console",
    }
    if disabled:
        env["OTEL_SDK_DISABLED"] = "true"

    code, out, err, _ = run_python(B13_SCRIPT, env=env)

    assert code == 0, err
    assert "RecursionError" not in out + err
    lines = [line for line in (out + err).splitlines() if line.strip()]
    app_lines = [line for line in lines if "fixture warning" in line]
    assert len(app_lines) == 1, lines  # the application's logging still works
    diagnostics = [
        line for line in lines if "fixture warning" not in line and "idle cpu" not in line
    ]
    assert len(diagnostics) <= 3, diagnostics
    share = float(out.split("idle cpu share")[1].split()[0])
    assert share < 0.3  # idle, not looping on its own failures


def test_internal_loggers_are_not_exported(otlp_receiver, run_python) -> None:
    code = """
import logging
import otel_obs
otel_obs.configure()
logging.getLogger("otel_obs.setup").warning("internal one")
logging.getLogger("opentelemetry.sdk._shared_internal").warning("internal two")
logging.getLogger("billing").warning("external")
"""
    env = {"OTEL_SERVICE_NAME": "b13", "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint}

    returncode, _, err, _ = run_python(code, env=env)

    assert returncode == 0, err
    assert [log.body for log in otlp_receiver.logs()] == ["external"]


DROPPING_APP = """
import otel_obs
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

if MODE == "raising exporter":
    def export(self, spans):
        raise RuntimeError("exporter bug")
    OTLPSpanExporter.export = export
if MODE == "raising hook":
    import otel_obs.ai.usage
    def from_attributes(*args, **kwargs):
        raise RuntimeError("hook bug")
    otel_obs.ai.usage.from_attributes = from_attributes

otel_obs.configure()
tracer = trace.get_tracer("app")
for i in range(100):
    with tracer.start_as_current_span("chat gpt-4o") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.provider.name", "openai")
        span.set_attribute("gen_ai.request.model", "gpt-4o")
        span.set_attribute("gen_ai.usage.input_tokens", 10)
        span.set_attribute("gen_ai.usage.output_tokens", 5)
print("user code finished", flush=True)
"""


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("raising exporter", "exception"), ("closed port", "export_failed"), ("raising hook", None)],
)
def test_telemetry_failures_never_reach_user_code_and_drops_are_counted(
    otlp_receiver, run_python, mode: str, reason: str | None
) -> None:
    env = {
        "OTEL_SERVICE_NAME": "drops",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "1",
        "OTEL_OBS_LOG_STDOUT": "false",
        "OTEL_OBS_SYSTEM_METRICS": "false",
        "OTEL_OBS_RAISE_INTERNAL_ERRORS": "",
    }
    if mode == "closed port":
        env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = _closed_endpoint() + "/v1/traces"

    code, out, err, _ = run_python(DROPPING_APP.replace("MODE", repr(mode)), env=env)

    assert code == 0, err
    assert "user code finished" in out
    assert "Traceback" not in err
    dropped = otlp_receiver.points("otel_obs.export.dropped")
    if reason is None:  # the hook failed, the spans themselves went out unpriced
        assert len([s for s in otlp_receiver.spans() if s.name == "chat gpt-4o"]) == 100
        assert dropped == []
        assert sum("add cost to a GenAI span failed" in line for line in err.splitlines()) == 1
        return
    assert otlp_receiver.spans() == []
    assert len(dropped) == 1
    assert dropped[0].value == 100
    assert dropped[0].attributes == {"otel_obs.signal": "traces", "otel_obs.reason": reason}
    assert sum("could not export" in line for line in err.splitlines()) == 1


SPLIT_ENDPOINTS = """
import logging, time
import otel_obs
from opentelemetry import metrics, trace
otel_obs.configure()
trace.get_tracer("split").start_span("lost in the blackhole").end()
logging.getLogger("split").warning("still delivered")
metrics.get_meter("split").create_counter("split.items").add(4)
started = time.monotonic()
flushed = otel_obs.shutdown()
print(flushed, time.monotonic() - started, flush=True)
"""


def test_a_silent_traces_endpoint_does_not_cost_logs_and_metrics_their_flush(
    otlp_receiver, run_python
) -> None:
    with BlackholeServer() as blackhole:
        env = {**_b12_env(otlp_receiver.endpoint),
               "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": blackhole.endpoint + "/v1/traces"}
        code, out, err, _ = run_python(SPLIT_ENDPOINTS, env=env)

    assert code == 0, err
    flushed, took = out.split()
    assert flushed == "False" and float(took) <= SHUTDOWN_TIMEOUT + 0.5
    assert [log.body for log in otlp_receiver.logs()] == ["still delivered"]
    assert [p.value for p in otlp_receiver.points("split.items")] == [4]
    warnings = [line for line in err.splitlines() if "shutdown did not finish" in line]
    assert len(warnings) == 1 and "(traces)" in warnings[0], err


FAILED_METRICS = """
import otel_obs
from opentelemetry import metrics
from otel_obs.setup import export_health
otel_obs.configure()
counter = metrics.get_meter("lost").create_counter("lost.items")
for shard in ("a", "b", "c"):
    counter.add(1, {"shard": shard})
otel_obs.shutdown()
print(export_health()["metrics"]["dropped"], flush=True)
"""


def test_failed_metric_exports_are_counted_by_data_point(otlp_receiver, run_python) -> None:
    env = {**_b12_env(otlp_receiver.endpoint), "OTEL_OBS_SYSTEM_METRICS": "false",
           "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "1",
           "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": _closed_endpoint() + "/v1/metrics"}

    code, out, err, _ = run_python(FAILED_METRICS, env=env)

    assert code == 0, err
    assert out.strip() == "3"  # the three series of the one counter
    assert sum("could not export 3 metrics" in line for line in err.splitlines()) == 1, err
