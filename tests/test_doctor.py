"""`otel-obs doctor` and `otel-obs config --json`: every finding at once, real export probes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from clean_env import clean_environment

from otel_obs.config import VARIABLES
from otel_obs.receiver import OTLPReceiver

OTEL_OBS = str(Path(sys.executable).with_name("otel-obs"))


def _otel_obs(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OTEL_OBS, *args], env=clean_environment(env), capture_output=True,
                          text=True, timeout=60, check=False)


def test_doctor_exits_0_against_a_healthy_endpoint_and_prints_each_check(
    otlp_receiver: OTLPReceiver,
) -> None:
    result = _otel_obs("doctor", env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint})

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("[   ok] configuration")
    for signal in ("traces", "metrics", "logs"):
        url = f"{otlp_receiver.endpoint}/v1/{signal}"
        assert f"[   ok] export {signal} to {url}: accepted an export" in lines
    assert lines[-1] == "4 checks, 0 errors"
    # The probes were real exports that the receiver decoded.
    assert [span.name for span in otlp_receiver.spans()] == ["otel-obs doctor"]
    assert [log.body for log in otlp_receiver.logs()] == ["otel-obs doctor"]
    assert otlp_receiver.requests["metrics"] == 1


def _closed_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


BAD = {
    "OTEL_EXPORTER_OTLP_PROTOCOL": "udp",
    "OTEL_TRACES_SAMPLER": "traceidratio",
    "OTEL_TRACES_SAMPLER_ARG": "abc",
    "OTEL_OBS_LOG_FORMAT": "xml",
    "OTEL_OBS_PRICES_FILE": "/nonexistent/prices.yaml",
    "OTEL_OBS_SHUTDOWN_TIMOUT": "3",
}


def test_doctor_lists_every_finding_at_once_and_exits_2() -> None:
    endpoint = _closed_endpoint()
    env = {**BAD, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}

    result = _otel_obs("doctor", "--timeout", "1", env=env)

    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stdout.splitlines() if line.startswith("[error]")]
    for name in ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_TRACES_SAMPLER_ARG", "OTEL_OBS_LOG_FORMAT",
                 "OTEL_OBS_PRICES_FILE", "OTEL_OBS_SHUTDOWN_TIMOUT"):
        assert sum(f"variable {name} " in line for line in errors) == 1, (name, errors)
    assert any("did you mean OTEL_OBS_SHUTDOWN_TIMEOUT?" in line for line in errors)
    for signal in ("traces", "metrics", "logs"):
        assert sum(f"export {signal} to {endpoint}/v1/{signal}" in line for line in errors) == 1
    assert len(errors) == 8
    assert result.stdout.splitlines()[-1] == "8 checks, 8 errors"


def test_doctor_json_has_the_same_checks(otlp_receiver: OTLPReceiver) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint, "OTEL_OBS_LOG_FORMAT": "xml"}

    result = _otel_obs("doctor", "--json", env=env)

    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["healthy"] is False
    assert [check["status"] for check in report["checks"]] == ["error", "ok", "ok", "ok"]
    assert report["checks"][0]["check"] == "variable OTEL_OBS_LOG_FORMAT"
    assert report["checks"][0]["value"] == "xml"


def test_doctor_with_the_sdk_disabled_probes_nothing(otlp_receiver: OTLPReceiver) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint, "OTEL_SDK_DISABLED": "true"}

    result = _otel_obs("doctor", env=env)

    assert result.returncode == 0
    assert "OTEL_SDK_DISABLED is true" in result.stdout
    assert otlp_receiver.requests == {"traces": 0, "metrics": 0, "logs": 0}


def test_config_json_structure() -> None:
    env = {
        "OTEL_SERVICE_NAME": "checkout",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4999",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://127.0.0.1:5000/custom/logs",
        "OTEL_OBS_SHUTDOWN_TIMEOUT": "2.5",
    }

    result = _otel_obs("config", "--json", env=env)

    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert set(config) == {"settings", "standard", "endpoints"}
    for variable in VARIABLES:
        entry = config["settings"][variable.setting]
        assert set(entry) == {"value", "source"}
    assert config["settings"]["shutdown_timeout"] == {"value": 2.5, "source": "environment"}
    assert config["settings"]["service_name"]["value"] == "checkout"
    assert config["endpoints"] == {
        "traces": "http://127.0.0.1:4999/v1/traces",
        "metrics": "http://127.0.0.1:4999/v1/metrics",
        "logs": "http://127.0.0.1:5000/custom/logs",
    }
    assert config["standard"]["OTEL_SERVICE_NAME"] == "checkout"


def test_doctor_warns_when_another_distro_could_be_picked(
    otlp_receiver: OTLPReceiver, official_distro_path: str
) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
        "PYTHONPATH": official_distro_path,
    }

    warned = _otel_obs("doctor", env=env)
    chosen = _otel_obs("doctor", env={**env, "OTEL_PYTHON_DISTRO": "otel_obs"})

    assert warned.returncode == 0, warned.stdout  # a warning, not an error
    [line] = [line for line in warned.stdout.splitlines() if line.startswith("[ warn] distro")]
    assert "OTEL_PYTHON_DISTRO=otel_obs" in line and "distro distro" in line
    assert warned.stdout.splitlines()[-1] == "5 checks, 0 errors, 1 warnings"
    assert chosen.returncode == 0
    assert "[   ok] distro: OTEL_PYTHON_DISTRO selects otel-obs over ['distro']" in chosen.stdout


def test_doctor_checks_no_endpoint_of_a_signal_exported_elsewhere(
    otlp_receiver: OTLPReceiver,
) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint, "OTEL_TRACES_EXPORTER": "none"}

    result = _otel_obs("doctor", env=env)

    assert result.returncode == 0, result.stdout
    assert "[   ok] export traces: OTEL_TRACES_EXPORTER chose no OTLP exporter" in result.stdout
    assert otlp_receiver.requests["traces"] == 0 and otlp_receiver.requests["logs"] == 1


def test_an_endpoint_without_scheme_is_shown_and_probed_as_the_default_the_app_uses(monkeypatch):
    from otel_obs.config import load_settings
    from otel_obs.doctor import diagnose, endpoints

    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:54399"}
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:54399")
    probed = []

    def probe(signal, settings, timeout):
        import os

        probed.append(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
        return True, "accepted an export"

    checks = diagnose(environ, 1.0, probe=probe)

    assert endpoints(load_settings(environ=environ)[0], environ)["traces"] == "http://localhost:4318/v1/traces"
    assert any("http://localhost:4318/v1/traces" in check["check"] for check in checks)
    assert probed and all(value is None for value in probed)
