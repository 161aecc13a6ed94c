"""Settings: malformed values warn once and fall back, sources are reported, the README agrees."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from otel_obs.config import ARGUMENT, DEFAULT, ENVIRONMENT, load_settings, markdown_table

ROOT = Path(__file__).resolve().parents[1]
OTEL_OBS = str(Path(sys.executable).with_name("otel-obs"))

# variable, malformed value, words the warning must contain (what is accepted, what is used)
MALFORMED = [
    ("OTEL_TRACES_SAMPLER_ARG", "abc", ["a number from 0 to 1", "using 1.0"]),
    ("OTEL_TRACES_SAMPLER", "sometimes",
     ["traceidratio", "entry point", "using parentbased_always_on"]),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "udp", ["http/protobuf", "grpc", "using http/protobuf"]),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318", ["http://", "using the default endpoint"]),
    ("OTEL_RESOURCE_ATTRIBUTES", "team=payments,broken", ["key=value", "dropped 1"]),
    ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s3cr3t-value,broken", ["key=value", "dropped 1"]),
    ("OTEL_BSP_SCHEDULE_DELAY", "-5", ["0 or more", "using the SDK default"]),
    ("OTEL_OBS_SHUTDOWN_TIMEOUT", "-1", ["0 or more", "using 5.0"]),
    ("OTEL_OBS_LOG_FORMAT", "xml", ["json or console", "using 'json'"]),
]


def _environ(name: str, value: str) -> dict[str, str]:
    environ = {name: value}
    if name == "OTEL_TRACES_SAMPLER_ARG":
        environ["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
    return environ


@pytest.mark.parametrize(("name", "value", "words"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_value_gives_one_finding_naming_variable_value_and_default(
    name: str, value: str, words: list[str]
) -> None:
    _, findings = load_settings(environ=_environ(name, value))

    assert [f.variable for f in findings] == [name]
    text = str(findings[0])
    for word in words:
        assert word in text, text
    if name.endswith("_HEADERS"):
        assert "s3cr3t" not in text and "x-api-key=***" in text
    else:
        assert repr(value) in text


def test_unknown_otel_obs_variable_suggests_the_nearest_name() -> None:
    _, findings = load_settings(environ={"OTEL_OBS_SHUTDOWN_TIMOUT": "3"})

    assert len(findings) == 1
    assert findings[0].variable == "OTEL_OBS_SHUTDOWN_TIMOUT"
    assert "did you mean OTEL_OBS_SHUTDOWN_TIMEOUT?" in str(findings[0])


def test_malformed_values_keep_their_safe_defaults() -> None:
    settings, _ = load_settings(
        environ={
            "OTEL_EXPORTER_OTLP_PROTOCOL": "udp",
            "OTEL_OBS_SHUTDOWN_TIMEOUT": "soon",
            "OTEL_OBS_REDACT": "maybe",
            "OTEL_RESOURCE_ATTRIBUTES":
                "service.name=billing,broken,deployment.environment.name=prod",
        }
    )

    assert settings.protocol == "http/protobuf"
    assert settings.shutdown_timeout == 5.0
    assert settings.redact is True
    assert settings.service_name == "billing"
    assert settings.environment == "prod"


def test_well_formed_standard_values_give_no_finding() -> None:
    _, findings = load_settings(
        environ={
            "OTEL_TRACES_SAMPLER": "traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.25",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.internal:4317",
            "OTEL_RESOURCE_ATTRIBUTES": "service.name=a,team=b%20c",
            "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20x",
            "OTEL_BSP_SCHEDULE_DELAY": "500",
            "OTEL_OBS_COLLECTOR_MEMORY_LIMIT_MIB": "256",
        }
    )

    assert findings == []


CONFIGURE_AND_EMIT = """
import otel_obs
from opentelemetry import trace
otel_obs.configure()
provider = trace.get_tracer_provider()
print("sampler", type(provider.sampler).__name__, getattr(provider.sampler, "rate", None)
      or provider.sampler._root.rate)
with trace.get_tracer("config-test").start_as_current_span("still-exported"):
    pass
otel_obs.shutdown()
print("alive")
"""


def test_app_runs_on_with_every_malformed_value_and_one_warning_each(
    otlp_receiver, run_python
) -> None:
    env = {
        "OTEL_SERVICE_NAME": "config-test",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "localhost:4318",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "abc",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "udp",
        "OTEL_RESOURCE_ATTRIBUTES": "team=payments,broken",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=s3cr3t-value,broken",
        "OTEL_BSP_SCHEDULE_DELAY": "-5",
        "OTEL_OBS_SHUTDOWN_TIMOUT": "3",
        "OTEL_OBS_LOG_STDOUT": "false",
    }

    code, out, err, _ = run_python(CONFIGURE_AND_EMIT, env=env)

    assert code == 0, err
    assert out.splitlines()[-1] == "alive"
    assert "sampler ParentBasedTraceIdRatio 1.0" in out
    warnings = [line for line in err.splitlines() if "otel-obs configuration" in line]
    for name in ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "OTEL_TRACES_SAMPLER_ARG",
                 "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_RESOURCE_ATTRIBUTES",
                 "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_BSP_SCHEDULE_DELAY",
                 "OTEL_OBS_SHUTDOWN_TIMOUT"):
        assert sum(line.count(f"{name}=") for line in warnings) == 1, (name, warnings)
    assert len(warnings) == 7, warnings
    assert "s3cr3t" not in err
    assert "Could not convert" not in err  # the SDK did not warn a second time
    # protocol udp fell back to OTLP/HTTP, and the well-formed resource pair was kept
    assert otlp_receiver.wait_for(lambda r: r.spans(), timeout=5)
    span = otlp_receiver.spans()[0]
    assert span.name == "still-exported"
    assert span.resource["team"] == "payments"


def _otel_obs(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    from clean_env import clean_environment

    return subprocess.run(
        [OTEL_OBS, *args], env=clean_environment(env), capture_output=True, text=True,
        timeout=60, check=False,
    )


def test_config_reports_the_source_of_each_setting_and_masks_headers() -> None:
    env = {
        "OTEL_OBS_LOG_FORMAT": "console",
        "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20s3cr3t,x-tenant=acme",
        "OTEL_SERVICE_NAME": "checkout",
    }

    result = _otel_obs("config", "--json", env=env)

    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["settings"]["log_format"] == {"value": "console", "source": ENVIRONMENT}
    assert config["settings"]["log_level"] == {"value": "INFO", "source": DEFAULT}
    assert config["settings"]["service_name"]["value"] == "checkout"
    assert config["standard"]["OTEL_EXPORTER_OTLP_HEADERS"] == "authorization=***,x-tenant=***"
    assert "s3cr3t" not in result.stdout + result.stderr and "acme" not in result.stdout

    text = _otel_obs("config", env=env)
    assert text.returncode == 0
    assert re.search(r"^log_format\s+console\s+\(environment\)$", text.stdout, re.MULTILINE)
    assert re.search(r"^log_level\s+INFO\s+\(default\)$", text.stdout, re.MULTILINE)
    assert "OTEL_EXPORTER_OTLP_HEADERS=authorization=***,x-tenant=***" in text.stdout
    assert "s3cr3t" not in text.stdout + text.stderr


def test_keyword_arguments_are_reported_as_argument_source() -> None:
    settings, findings = load_settings(
        {"log_level": "debug", "shutdown_timeout": 2}, environ={"OTEL_OBS_LOG_LEVEL": "ERROR"}
    )

    assert findings == []
    assert settings.log_level == "DEBUG"
    assert settings.shutdown_timeout == 2.0
    assert settings.sources["log_level"] == ARGUMENT
    assert settings.sources["shutdown_timeout"] == ARGUMENT
    assert settings.sources["log_format"] == DEFAULT


def test_unknown_keyword_argument_is_a_finding_with_a_suggestion() -> None:
    _, findings = load_settings({"shutdown_timout": 2}, environ={})

    assert len(findings) == 1
    assert "did you mean shutdown_timeout?" in str(findings[0])


def test_readme_variable_table_is_the_generated_one() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- otel-obs-variables:start -->", "<!-- otel-obs-variables:end -->"
    assert start in readme and end in readme
    between = readme.split(start, 1)[1].split(end, 1)[0]
    generated = subprocess.run(
        [sys.executable, "-m", "otel_obs.config", "--markdown"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout

    assert between.strip() == generated.strip()
    assert generated == markdown_table()
    for name in ("OTEL_OBS_SHUTDOWN_TIMEOUT", "OTEL_OBS_REDACT", "OTEL_OBS_CACHE_DIR"):
        assert f"`{name}`" in generated


def test_an_unknown_signal_exporter_is_reported_and_otlp_used() -> None:
    _, findings = load_settings(environ={"OTEL_TRACES_EXPORTER": "zipkin_json"})

    assert [(f.variable, f.value) for f in findings] == [("OTEL_TRACES_EXPORTER", "zipkin_json")]
    assert "otlp, console or none" in findings[0].message


def test_settings_from_standard_variables_name_their_source() -> None:
    settings, _ = load_settings(
        {"environment": "staging"},
        environ={"OTEL_RESOURCE_ATTRIBUTES": "service.name=billing,service.version=1.2.3"},
    )

    assert (settings.service_name, settings.service_version) == ("billing", "1.2.3")
    assert settings.sources["service_name"] == ENVIRONMENT
    assert settings.sources["service_version"] == ENVIRONMENT
    assert settings.sources["environment"] == ARGUMENT
    assert settings.sources["protocol"] == DEFAULT
    with pytest.raises(TypeError):
        settings.sources["protocol"] = ENVIRONMENT  # type: ignore[index]
