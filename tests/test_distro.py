"""Zero-code start: `otel-obs run` and `opentelemetry-instrument` end in configure()'s setup."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from clean_env import clean_environment

from otel_obs.receiver import OTLPReceiver

BIN = Path(sys.executable).parent

APP = """
import logging, os
import otel_obs
from otel_obs import setup
from opentelemetry import trace

print("configured", setup.is_configured(), "zero_code", setup._state.zero_code)
print("configurator", os.environ.get("OTEL_PYTHON_CONFIGURATOR"))
print("semconv", os.environ.get("OTEL_SEMCONV_STABILITY_OPT_IN"))
with trace.get_tracer("zero-code").start_as_current_span("zero-code work"):
    logging.getLogger("app").warning("zero-code log")
otel_obs.configure()  # the zero-code start already ran the same setup: this one only warns
"""

LAUNCHERS = {
    "otel-obs run": [str(BIN / "otel-obs"), "run", "--"],
    "opentelemetry-instrument": [str(BIN / "opentelemetry-instrument")],
}


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_zero_code_start_configures_through_our_setup_and_exports(
    otlp_receiver: OTLPReceiver, launcher: str
) -> None:
    env = clean_environment({
        "OTEL_SERVICE_NAME": "zero-code",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
        "OTEL_OBS_LOG_FORMAT": "console",
    })

    result = subprocess.run([*LAUNCHERS[launcher], sys.executable, "-c", APP], env=env,
                            capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "configured True zero_code True\n" in result.stdout
    assert "configurator otel_obs\n" in result.stdout  # ObsDistro chose our configurator
    assert "semconv http\n" in result.stdout
    assert output.count("already called (zero-code start)") == 1
    [span] = [s for s in otlp_receiver.spans() if s.name == "zero-code work"]
    assert span.resource["service.name"] == "zero-code"
    assert span.resource["telemetry.distro.name"] == "otel-obs"
    [record] = [log for log in otlp_receiver.logs() if log.body == "zero-code log"]
    assert record.trace_id == span.trace_id
    # The replaced GenAI instrumentations are left out before the loader looks at them.
    assert "google-genai only instruments" not in output
    assert " ERROR " not in output, output


SDK_DISABLED_APP = """
import logging
from opentelemetry.instrumentation.logging import LoggingInstrumentor
from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
logging.getLogger("app").warning("fixture warning")
print("root handlers", len(logging.getLogger().handlers))
print("instrumented", LoggingInstrumentor().is_instrumented_by_opentelemetry,
      SystemMetricsInstrumentor().is_instrumented_by_opentelemetry)
"""


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_zero_code_start_with_the_sdk_disabled_loads_nothing(
    otlp_receiver: OTLPReceiver, launcher: str
) -> None:
    env = clean_environment({
        "OTEL_SDK_DISABLED": "true",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
    })

    result = subprocess.run([*LAUNCHERS[launcher], sys.executable, "-c", SDK_DISABLED_APP],
                            env=env, capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stderr
    assert "fixture warning" in result.stderr  # the application's logging still works
    assert "root handlers 0" in result.stdout
    assert "instrumented False False" in result.stdout
    assert otlp_receiver.requests == {"traces": 0, "metrics": 0, "logs": 0}


def test_run_passes_the_exit_code_through(otlp_receiver: OTLPReceiver) -> None:
    env = clean_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint})

    result = subprocess.run(
        [*LAUNCHERS["otel-obs run"], sys.executable, "-c", "import sys; sys.exit(7)"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )

    assert result.returncode == 7, result.stderr


def test_run_without_a_command_explains_and_exits_2() -> None:
    result = subprocess.run([str(BIN / "otel-obs"), "run"], capture_output=True, text=True,
                            timeout=30, check=False)

    assert result.returncode == 2
    assert "give the command to run" in result.stderr


def test_run_loads_no_opentelemetry_before_it_starts_the_command() -> None:
    # Whatever the launcher imports is thrown away by exec: it only adds start-up time.
    code = (
        "import sys\n"
        "from otel_obs import cli\n"
        "module = __import__(cli.COMMANDS['run'][0], fromlist=['run_environment'])\n"
        "module.run_environment()\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=30, check=True)

    # Only the two namespace packages that locating auto_instrumentation passes through.
    assert result.stdout.strip() == "['opentelemetry', 'opentelemetry.instrumentation']"


def test_otel_obs_run_picks_ours_when_opentelemetry_distro_is_also_installed(
    otlp_receiver: OTLPReceiver, official_distro_path: str
) -> None:
    env = clean_environment({
        "OTEL_SERVICE_NAME": "zero-code",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
        "OTEL_OBS_LOG_FORMAT": "console",
        "PYTHONPATH": official_distro_path,
    })
    check = (
        "import importlib.metadata as m\n"
        "print(sorted(e.name for e in m.entry_points(group='opentelemetry_distro')))\n"
    )

    for _ in range(2):  # the same choice every time, whatever order the entry points come in
        result = subprocess.run([*LAUNCHERS["otel-obs run"], sys.executable, "-c", APP + check],
                                env=env, capture_output=True, text=True, timeout=60, check=False)

        assert result.returncode == 0, result.stderr
        assert "configured True zero_code True\n" in result.stdout
        assert "['distro', 'otel_obs']" in result.stdout  # both really are installed
        assert "not loaded" not in result.stderr  # no noise about the configurator not chosen
    assert {s.resource["telemetry.distro.name"] for s in otlp_receiver.spans()} == {"otel-obs"}
