"""The OTLP output: internal loggers kept out, one masking step, request trace context."""

from __future__ import annotations

import io
import logging
import textwrap
import types

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanContext, TraceFlags

from otel_obs import logs
from otel_obs.redact import RedactingLogExporter, Redactor

SETTINGS = types.SimpleNamespace(
    service_name="orders", log_format="json", log_level="INFO", log_stdout=False
)


@pytest.fixture
def exported(monkeypatch):
    """Root logger -> our OTLP handler -> masking exporter -> memory; restored afterwards."""
    monkeypatch.setattr("sys.stdout", io.StringIO())
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(RedactingLogExporter(memory, Redactor()))
    )
    logs.install(SETTINGS, provider, Redactor())
    yield memory
    logs.uninstall()
    root.handlers[:] = handlers
    root.setLevel(level)


def _bodies(memory: InMemoryLogRecordExporter) -> list:
    return [record.log_record.body for record in memory.get_finished_logs()]


def test_application_records_are_exported_masked(exported):
    logging.getLogger("app").warning("login by %s", "dana@example.co.uk", extra={"token": "t0k3n"})

    (record,) = exported.get_finished_logs()
    assert record.log_record.body == "login by [REDACTED:email]"
    assert record.log_record.attributes["token"] == "[REDACTED:secret]"
    assert record.log_record.severity_text == "WARN"


@pytest.mark.parametrize(
    "name", ["otel_obs", "otel_obs.setup", "opentelemetry.exporter.otlp.proto.http._log_exporter"]
)
def test_internal_loggers_are_never_exported(exported, name):
    logging.getLogger(name).warning("export failed")
    logging.getLogger("app").warning("kept")

    assert _bodies(exported) == ["kept"]


def test_handler_side_does_not_mask_so_the_exporter_masks_once(monkeypatch):
    monkeypatch.setattr("sys.stdout", io.StringIO())
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    logs.install(SETTINGS, provider, Redactor())
    try:
        logging.getLogger("app").warning("mail %s", "a@b.example")
    finally:
        logs.uninstall()
        root.handlers[:] = handlers
        root.setLevel(level)

    assert _bodies(memory) == ["mail a@b.example"]


def test_exception_attributes_are_masked(exported):
    try:
        raise RuntimeError("key sk-proj-AbC123dEf456GhI789jKl012MnO345pQr678 rejected")
    except RuntimeError:
        logging.getLogger("app").exception("call failed")

    attributes = exported.get_finished_logs()[0].log_record.attributes
    assert attributes["exception.message"] == "key [REDACTED:api_key] rejected"
    assert "AbC123dEf456" not in attributes["exception.stacktrace"]


def test_record_in_a_span_carries_its_ids(exported):
    tracer = TracerProvider().get_tracer("t")

    with tracer.start_as_current_span("w") as span:
        logging.getLogger("app").info("inside")

    record = exported.get_finished_logs()[0].log_record
    assert record.trace_id == span.get_span_context().trace_id
    assert record.span_id == span.get_span_context().span_id


def test_bound_request_context_is_used_outside_a_span(exported):
    bound = SpanContext(0x1234, 0x5678, is_remote=False, trace_flags=TraceFlags(1))

    with logs.request_context(bound, "req-9"):
        logging.getLogger("uvicorn.access").info("GET /ok 200")
    logging.getLogger("app").info("later")

    during, later = (record.log_record for record in exported.get_finished_logs())
    assert (during.trace_id, during.span_id) == (0x1234, 0x5678)
    assert during.attributes["request_id"] == "req-9"
    assert later.trace_id == 0 and "request_id" not in later.attributes


B13_SCRIPT = textwrap.dedent(
    """
    import logging, sys, time
    import otel_obs
    otel_obs.configure()
    logging.warning("fixture warning")
    time.sleep(4)
    print("IDLE-END", flush=True)
    """
)


@pytest.mark.parametrize("disabled", [False, True], ids=["sdk-on", "sdk-disabled"])
def test_b13_failing_export_does_not_log_itself_in_a_loop(run_python, disabled):
    env = {
        "OTEL_SERVICE_NAME": "b13",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",  # closed port
        "OTEL_BLRP_SCHEDULE_DELAY": "100",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_OBS_RAISE_INTERNAL_ERRORS": "false",
    }
    if disabled:
        env["OTEL_SDK_DISABLED"] = "true"

    code, out, err, _ = run_python(B13_SCRIPT, env=env, timeout=30)

    assert code == 0, err
    assert "RecursionError" not in out + err
    idle, _, at_exit = out.partition("IDLE-END")
    lines = (idle + err).splitlines()
    assert sum("fixture warning" in line for line in lines) == 1
    # While idling with a 100 ms export schedule (about 40 failed export rounds): at most
    # three diagnostic lines; a few more when exit gives up on the unreachable endpoint.
    idle_diagnostics = [line for line in idle.splitlines() if "fixture warning" not in line]
    assert len(idle_diagnostics) <= 3, idle_diagnostics
    assert len((at_exit + err).splitlines()) <= 8, at_exit + err


def test_extra_fields_of_other_types_are_exported_as_text(exported):
    class Tier:
        def __str__(self) -> str:
            return "gold for a@b.example"

    logging.getLogger("app").info("x", extra={"tier": Tier(), "n": 2, "tags": ["a", "b"]})

    attributes = exported.get_finished_logs()[0].log_record.attributes
    assert attributes["tier"] == "gold for [REDACTED:email]"
    assert attributes["n"] == 2 and list(attributes["tags"]) == ["a", "b"]
