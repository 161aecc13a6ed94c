"""The stdout output: JSON fields, trace context, request ids, masking, console format."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re
import types
from datetime import datetime, timezone

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanContext, TraceFlags

from otel_obs import logs
from otel_obs.redact import Redactor


def _settings(**overrides):
    values = {
        "service_name": "orders",
        "log_format": "json",
        "log_level": "INFO",
        "log_stdout": True,
    }
    values.update(overrides)
    return types.SimpleNamespace(**values)


class _Output(io.StringIO):
    """The stdout handler's stream for one test."""

    def install(self, settings, provider=None, redactor=None):
        logs.install(settings, provider, Redactor() if redactor is None else redactor)
        for handler in logs.installed_handlers():
            if handler.get_name() == "otel-obs-stdout":
                handler.setStream(self)


@pytest.fixture
def stdout():
    """Handlers writing to a buffer; uninstalled, and the root logger restored, after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield _Output()
    logs.uninstall()
    root.handlers[:] = handlers
    root.setLevel(level)


def _lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def tracer():
    return TracerProvider().get_tracer("test")


def test_json_line_has_the_documented_fields(stdout):
    stdout.install(_settings())

    logging.getLogger("app.orders").warning("order %s shipped", "ord-1")

    (line,) = _lines(stdout)
    assert line["level"] == "WARNING"
    assert line["logger"] == "app.orders"
    assert line["message"] == "order ord-1 shipped"
    assert line["service.name"] == "orders"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["timestamp"])
    stamp = datetime.strptime(line["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=timezone.utc
    )
    assert abs((datetime.now(timezone.utc) - stamp).total_seconds()) < 5
    assert "trace_id" not in line and "span_id" not in line and "request_id" not in line


def test_trace_and_span_ids_inside_a_span_only(stdout, tracer):
    stdout.install(_settings())
    log = logging.getLogger("app")

    with tracer.start_as_current_span("work") as span:
        log.info("inside")
    log.info("outside")

    inside, outside = _lines(stdout)
    context = span.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert re.fullmatch(r"[0-9a-f]{32}", inside["trace_id"]) and inside["trace_id"] != "0" * 32
    assert "trace_id" not in outside


def test_message_extras_and_exception_are_masked(stdout):
    stdout.install(_settings())

    try:
        raise ValueError("bad card 4111 1111 1111 1111")
    except ValueError:
        logging.getLogger("app").exception(
            "signup for %s",
            "dana@example.co.uk",
            extra={
                "api_key": "plain-key",
                "note": "call +44 20 7946 0958",
                "count": 3,
                "obj": object(),
            },
        )

    (line,) = _lines(stdout)
    assert line["message"] == "signup for [REDACTED:email]"
    assert line["api_key"] == "[REDACTED:secret]"
    assert line["note"] == "call [REDACTED:phone]"
    assert line["count"] == 3
    assert line["obj"].startswith("<object object")
    assert line["exception"]["type"] == "ValueError"
    assert line["exception"]["message"] == "bad card [REDACTED:card]"
    assert "4111 1111" not in line["exception"]["stack"]
    assert line["exception"]["stack"].startswith("Traceback (most recent call last):")


def test_request_id_comes_from_the_web_accessor(stdout, monkeypatch):
    from otel_obs import web

    monkeypatch.setattr(web, "current_request_id", lambda: "req-42")
    stdout.install(_settings())

    logging.getLogger("app").info("hello")

    assert _lines(stdout)[0]["request_id"] == "req-42"


def test_bound_request_context_is_used_outside_any_span(stdout):
    stdout.install(_settings())
    bound = SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(1))

    token = logs.bind_request_context(bound, "req-7")
    logging.getLogger("uvicorn.access").info("GET /ok 200")
    logs.reset_request_context(token)
    logging.getLogger("app").info("after")

    during, after = _lines(stdout)
    assert during["trace_id"] == format(0xABC, "032x") and during["span_id"] == format(
        0xDEF, "016x"
    )
    assert during["request_id"] == "req-7"
    assert "trace_id" not in after and "request_id" not in after


def test_current_span_wins_over_the_bound_request(stdout, tracer):
    stdout.install(_settings())

    bound = SpanContext(1, 2, is_remote=False)
    with logs.request_context(bound, None), tracer.start_as_current_span("inner") as span:
        logging.getLogger("app").info("x")

    assert _lines(stdout)[0]["trace_id"] == format(span.get_span_context().trace_id, "032x")


def test_masking_off_writes_values_as_logged(stdout):
    stdout.install(_settings(), redactor=Redactor(enabled=False))

    logging.getLogger("app").info("mail %s", "a@b.example")

    assert _lines(stdout)[0]["message"] == "mail a@b.example"


def test_console_format_is_one_readable_masked_line(stdout, tracer):
    stdout.install(_settings(log_format="console"), redactor=Redactor())

    with tracer.start_as_current_span("w") as span:
        logging.getLogger("app").error("mail %s", "a@b.example", extra={"tier": "pro"})

    text = stdout.getvalue().strip()
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert re.fullmatch(
        rf"\S+Z ERROR    app trace_id={trace_id} span_id=[0-9a-f]{{16}}"
        r" - mail \[REDACTED:email\] tier=pro",
        text,
    )


def test_log_level_and_stdout_switch(stdout):
    stdout.install(_settings(log_level="WARNING"), redactor=Redactor())
    logging.getLogger("app").info("dropped")
    logging.getLogger("app").warning("kept")
    assert [line["message"] for line in _lines(stdout)] == ["kept"]

    stdout.install(_settings(log_stdout=False), redactor=Redactor())
    logging.getLogger("app").warning("not written")
    assert [line["message"] for line in _lines(stdout)] == ["kept"]


def test_uninstall_restores_the_root_logger(stdout):
    root = logging.getLogger()
    before = list(root.handlers)
    root.setLevel(logging.ERROR)

    stdout.install(_settings())
    assert root.level == logging.INFO and len(root.handlers) == len(before) + 1
    logs.uninstall()

    assert root.handlers == before and root.level == logging.ERROR


def _uvicorn_config():
    from uvicorn.config import LOGGING_CONFIG

    return LOGGING_CONFIG


@pytest.mark.parametrize("order", ["server-configures-first", "server-configures-after"])
def test_uvicorn_records_are_written_once_as_json(stdout, monkeypatch, order):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    if order == "server-configures-first":
        logging.config.dictConfig(_uvicorn_config())
        stdout.install(_settings())
    else:
        stdout.install(_settings())
        logging.config.dictConfig(_uvicorn_config())

    logging.getLogger("uvicorn.error").info("Started server process [1]")
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", "/ok", "1.1", 200
    )

    assert [line["message"] for line in _lines(stdout)] == [
        "Started server process [1]",
        '127.0.0.1:5 - "GET /ok HTTP/1.1" 200',
    ]
    assert err.getvalue() == ""
    assert logging.getLogger("uvicorn.access").hasHandlers()


def test_the_logging_instrumentation_adds_no_second_handler(stdout):
    from opentelemetry.instrumentation.logging import LoggingInstrumentor
    from opentelemetry.sdk._logs import LoggerProvider

    stdout.install(_settings(), LoggerProvider())
    count = len(logging.getLogger().handlers)
    instrumentor = LoggingInstrumentor()
    instrumentor.instrument()
    try:
        assert len(logging.getLogger().handlers) == count
    finally:
        instrumentor.uninstrument()


SERVER_SPAN_SCRIPT = """
import json, logging, sys, types
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from otel_obs import logs
from otel_obs.redact import Redactor

trace.set_tracer_provider(TracerProvider())
settings = types.SimpleNamespace(
    service_name="s", log_format="json", log_level="INFO", log_stdout=True
)
logs.install(settings, None, Redactor())
tracer = trace.get_tracer("t")
with tracer.start_as_current_span("GET /x", kind=trace.SpanKind.SERVER) as span:
    pass
with tracer.start_as_current_span("internal work"):
    pass
logging.getLogger("uvicorn.error").error("Exception in ASGI application")
logging.getLogger("app").info("application line outside any span")
print("SERVER", format(span.get_span_context().trace_id, "032x"), file=sys.stderr)
"""


def test_server_loggers_fall_back_to_the_last_server_span_only(run_python):
    code, out, err, _ = run_python(SERVER_SPAN_SCRIPT)

    assert code == 0, err
    server_trace_id = err.split("SERVER ")[1].split()[0]
    server_line, app_line = (json.loads(line) for line in out.splitlines())
    assert server_line["trace_id"] == server_trace_id
    assert "trace_id" not in app_line
