"""configure(): the new user's path over real OTLP, one-time setup, the off switch, flushing."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from otel_obs.receiver import OTLPReceiver

NEW_USER_APP = """
import logging
import otel_obs
from opentelemetry import metrics, trace

otel_obs.configure()
with trace.get_tracer("shop").start_as_current_span("checkout") as span:
    span.set_attribute("order.items", 3)
    logging.getLogger("shop").warning("order placed")
metrics.get_meter("shop").create_counter("shop.orders").add(7, {"channel": "web"})
"""

RESOURCE_KEYS = ("service.instance.id", "host.name", "process.pid", "telemetry.sdk.version")


def _new_user_env(endpoint: str, **extra: str) -> dict[str, str]:
    return {
        "OTEL_SERVICE_NAME": "shop",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_OBS_LOG_STDOUT": "false",
        **extra,
    }


def _assert_new_user_telemetry(receiver: OTLPReceiver) -> None:
    assert receiver.wait_for(
        lambda r: r.spans() and r.points("shop.orders") and r.logs(), timeout=10
    ), (receiver.spans(), receiver.logs())
    [span] = [s for s in receiver.spans() if s.name == "checkout"]
    assert span.attributes["order.items"] == 3
    assert span.resource["service.name"] == "shop"
    assert span.resource["deployment.environment.name"] == "development"
    for key in RESOURCE_KEYS:
        assert span.resource.get(key) not in (None, ""), key
    [point] = receiver.points("shop.orders")
    assert point.value == 7 and point.attributes == {"channel": "web"} and point.is_monotonic
    assert point.resource["service.instance.id"] == span.resource["service.instance.id"]
    [record] = [log for log in receiver.logs() if log.body == "order placed"]
    assert record.severity_text == "WARN"
    assert record.trace_id == span.trace_id and record.span_id == span.span_id


def test_new_user_gets_spans_metrics_and_logs_over_otlp_http(otlp_receiver, run_python) -> None:
    code, _, err, _ = run_python(NEW_USER_APP, env=_new_user_env(otlp_receiver.endpoint))

    assert code == 0, err
    _assert_new_user_telemetry(otlp_receiver)
    assert not [log for log in otlp_receiver.logs() if "otel" in str(log.body).lower()]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


COLLECTOR_CONFIG = """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc_port}
exporters:
  otlp_http:
    endpoint: {receiver}
    compression: none
service:
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlp_http]}}
    metrics: {{receivers: [otlp], exporters: [otlp_http]}}
    logs: {{receivers: [otlp], exporters: [otlp_http]}}
  telemetry:
    metrics:
      level: none
"""


@pytest.fixture
def grpc_collector(otlp_receiver: OTLPReceiver, tmp_path: Path):
    """The real Collector taking OTLP/gRPC and forwarding to the receiver over OTLP/HTTP."""
    binary = Path.home() / ".cache" / "otel-obs" / "otelcol-obs"
    if not os.access(binary, os.X_OK):
        pytest.skip("the Collector binary otelcol-obs is not built; run collector/build.sh")
    port = _free_port()
    config = tmp_path / "collector.yaml"
    config.write_text(COLLECTOR_CONFIG.format(grpc_port=port, receiver=otlp_receiver.endpoint))
    log_path = tmp_path / "collector.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([str(binary), "--config", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the Collector did not start: " + log_path.read_text())
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_new_user_gets_telemetry_over_otlp_grpc(grpc_collector, otlp_receiver, run_python) -> None:
    env = _new_user_env(grpc_collector, OTEL_EXPORTER_OTLP_PROTOCOL="grpc")

    code, _, err, _ = run_python(NEW_USER_APP, env=env)

    assert code == 0, err
    _assert_new_user_telemetry(otlp_receiver)


SECOND_CONFIGURE = """
import otel_obs
from opentelemetry import trace
first = otel_obs.configure()
provider = trace.get_tracer_provider()
second = otel_obs.configure(service_name="other", shutdown_timeout=1)
print(second is first, trace.get_tracer_provider() is provider, second.service_name)
"""


def test_second_configure_warns_once_and_changes_nothing(otlp_receiver, run_python) -> None:
    code, out, err, _ = run_python(SECOND_CONFIGURE, env=_new_user_env(otlp_receiver.endpoint))

    assert code == 0, err
    assert out.split() == ["True", "True", "shop"]
    assert err.count("already called") == 1


SDK_DISABLED = """
import logging
import otel_obs
from opentelemetry import metrics, trace
otel_obs.configure()
with trace.get_tracer("shop").start_as_current_span("checkout") as span:
    print("recording", span.is_recording())
metrics.get_meter("shop").create_counter("shop.orders").add(1)
logging.getLogger("shop").warning("order placed")
print("root handlers", len(logging.getLogger().handlers))
print("tracer provider", type(trace.get_tracer_provider()).__name__)
print("shutdown", otel_obs.shutdown())
"""


def test_sdk_disabled_turns_everything_off(otlp_receiver, run_python) -> None:
    env = _new_user_env(otlp_receiver.endpoint, OTEL_SDK_DISABLED="true")

    code, out, err, _ = run_python(SDK_DISABLED, env=env)

    assert code == 0, err
    assert "recording False" in out
    assert "root handlers 0" in out
    assert "tracer provider ProxyTracerProvider" in out
    assert "shutdown True" in out
    assert "order placed" in err  # the app's own logging still works
    time.sleep(0.5)
    assert otlp_receiver.requests == {"traces": 0, "metrics": 0, "logs": 0}


SEMCONV_MODE = """
import os
import otel_obs
from opentelemetry.instrumentation._semconv import (
    _OpenTelemetrySemanticConventionStability as Stability, _OpenTelemetryStabilitySignalType,
)
otel_obs.configure()
Stability._initialized = False
Stability._initialize()
mode = Stability._get_opentelemetry_stability_opt_in_mode(_OpenTelemetryStabilitySignalType.HTTP)
print(os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"], mode.name)
"""


@pytest.mark.parametrize(
    ("user_value", "expected"),
    [(None, "http HTTP"), ("http/dup", "http/dup HTTP_DUP")],
)
def test_stable_http_conventions_unless_the_user_chose(
    otlp_receiver, run_python, user_value: str | None, expected: str
) -> None:
    env = _new_user_env(otlp_receiver.endpoint)
    if user_value:
        env["OTEL_SEMCONV_STABILITY_OPT_IN"] = user_value

    code, out, err, _ = run_python(SEMCONV_MODE, env=env)

    assert code == 0, err
    assert out.strip() == expected


INSTRUMENTED = """
import otel_obs
from opentelemetry.instrumentation.logging import LoggingInstrumentor
from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
otel_obs.configure()
print("logging", LoggingInstrumentor().is_instrumented_by_opentelemetry)
print("system_metrics", SystemMetricsInstrumentor().is_instrumented_by_opentelemetry)
"""


@pytest.mark.parametrize(
    ("disabled", "expected"),
    [("", ["logging True", "system_metrics True"]),
     ("system_metrics, logging", ["logging False", "system_metrics False"])],
)
def test_disabled_instrumentations_are_not_loaded(
    otlp_receiver, run_python, disabled: str, expected: list[str]
) -> None:
    env = _new_user_env(otlp_receiver.endpoint, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=disabled)

    code, out, err, _ = run_python(INSTRUMENTED, env=env)

    assert code == 0, err
    assert out.splitlines() == expected


FLUSH_THEN_HARD_EXIT = """
import os, sys
import otel_obs
from opentelemetry import trace
otel_obs.configure()
for name in ("a", "b", "c"):
    trace.get_tracer("shop").start_span(name).end()
if sys.argv[1:] == ["flush"]:
    print("flushed", otel_obs.shutdown())
os._exit(0)  # no interpreter exit hooks: only an explicit shutdown() exports
"""


@pytest.mark.parametrize("flush", [True, False])
def test_shutdown_flushes_what_the_batch_holds(otlp_receiver, flush: bool) -> None:
    from clean_env import clean_environment

    env = _new_user_env(otlp_receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY="60000")
    argv = ["flush"] if flush else []
    result = subprocess.run(
        [os.sys.executable, "-c", FLUSH_THEN_HARD_EXIT, *argv],
        env=clean_environment(env), capture_output=True, text=True, timeout=60, check=False,
    )

    assert result.returncode == 0, result.stderr
    time.sleep(0.3)
    names = sorted(span.name for span in otlp_receiver.spans())
    assert names == (["a", "b", "c"] if flush else [])
    if flush:
        assert "flushed True" in result.stdout


@pytest.mark.parametrize("signal", ["traces", "metrics", "logs"])
def test_otel_signal_exporter_none_exports_nothing_of_that_signal(
    signal, otlp_receiver, run_python
):
    code = """
import logging, otel_obs
from opentelemetry import metrics, trace
otel_obs.configure()
with trace.get_tracer("t").start_as_current_span("work"):
    logging.getLogger("app").warning("a record")
metrics.get_meter("t").create_counter("work.done").add(1)
otel_obs.shutdown()
"""
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
        f"OTEL_{signal.upper()}_EXPORTER": "none",
        "OTEL_OBS_SYSTEM_METRICS": "false",
    }
    returncode, _, err, _ = run_python(code, env=env)

    assert returncode == 0, err
    received = {
        "traces": otlp_receiver.spans(),
        "metrics": otlp_receiver.points("work.done"),
        "logs": otlp_receiver.logs(),
    }
    assert received[signal] == []
    assert all(received[other] for other in received if other != signal)
