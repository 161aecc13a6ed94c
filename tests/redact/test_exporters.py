"""The exporters send masked copies, leave the originals alone and never lose a batch."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from otel_obs._guard import RAISE_ENV
from otel_obs.redact import ERROR_MARKER, RedactingLogExporter, RedactingSpanExporter, Redactor


class _Recording(InMemorySpanExporter):
    """Keeps what it was given and what it was asked to do."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def shutdown(self) -> None:
        self.calls.append("shutdown")
        super().shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.calls.append(f"force_flush:{timeout_millis}")
        return True


class _Broken(Redactor):
    def redact_text(self, text):
        raise RuntimeError("masking failed")

    def redact_attributes(self, attributes):
        raise RuntimeError("masking failed")

    def redact_body(self, body):
        raise RuntimeError("masking failed")


def _span_pipeline(redactor):
    inner = _Recording()
    exporter = RedactingSpanExporter(inner, redactor)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("t"), inner, exporter


def test_span_copy_masks_name_attributes_events_links_and_status():
    tracer, inner, _ = _span_pipeline(Redactor())

    with tracer.start_as_current_span("mail a@b.example") as span:
        span.set_attribute("user.email", "dana@example.co.uk")
        span.set_attribute("db.password", "x")
        span.set_attribute("http.response.status_code", 500)
        span.add_event("retry", {"note": "card 4111 1111 1111 1111"})
        span.set_status(Status(StatusCode.ERROR, "token=abc123 rejected"))
        original = span

    exported = inner.get_finished_spans()[0]
    assert exported.name == "mail [REDACTED:email]"
    assert dict(exported.attributes) == {
        "user.email": "[REDACTED:email]",
        "db.password": "[REDACTED:password]",
        "http.response.status_code": 500,
    }
    assert exported.events[0].attributes == {"note": "card [REDACTED:card]"}
    assert exported.status.description == "token=[REDACTED:secret] rejected"
    assert exported.status.status_code is StatusCode.ERROR
    assert exported.context == original.get_span_context()
    # The span the application holds is not changed.
    assert original.attributes["user.email"] == "dana@example.co.uk"


def test_span_exporter_delegates_result_shutdown_and_flush():
    inner = _Recording()
    exporter = RedactingSpanExporter(inner, Redactor())

    assert exporter.export([]) is SpanExportResult.SUCCESS
    assert exporter.force_flush(1234) is True
    exporter.shutdown()
    assert inner.calls == ["force_flush:1234", "shutdown"]


def test_span_masking_error_still_exports_with_strings_replaced(monkeypatch, caplog):
    monkeypatch.delenv(RAISE_ENV, raising=False)
    tracer, inner, _ = _span_pipeline(_Broken())

    with (
        caplog.at_level(logging.WARNING, logger="otel_obs"),
        tracer.start_as_current_span("work") as span,
    ):
        span.set_attribute("secret.thing", "hunter22")
        span.set_attribute("count", 3)

    exported = inner.get_finished_spans()
    assert len(exported) == 1
    assert dict(exported[0].attributes) == {"secret.thing": ERROR_MARKER, "count": 3}
    assert "hunter22" not in caplog.text


def test_span_masking_error_raises_under_the_test_switch():
    tracer, inner, _ = _span_pipeline(Redactor())
    with tracer.start_as_current_span("work"):
        pass
    exporter = RedactingSpanExporter(InMemorySpanExporter(), _Broken())

    with pytest.raises(RuntimeError, match="masking failed"):
        exporter.export(inner.get_finished_spans())


def test_disabled_redactor_passes_spans_through_unchanged():
    tracer, inner, _ = _span_pipeline(Redactor(enabled=False))

    with tracer.start_as_current_span("w") as span:
        span.set_attribute("user.email", "a@b.example")

    assert inner.get_finished_spans()[0].attributes["user.email"] == "a@b.example"


def _log_pipeline(redactor):
    inner = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(RedactingLogExporter(inner, redactor))
    )
    return provider.get_logger("t"), inner


def test_log_copy_masks_string_body_and_attributes():
    logger, inner = _log_pipeline(Redactor())

    logger.emit(body="sent to +44 20 7946 0958", attributes={"api_key": "abc", "n": 1})

    record = inner.get_finished_logs()[0].log_record
    assert record.body == "sent to [REDACTED:phone]"
    assert dict(record.attributes) == {"api_key": "[REDACTED:secret]", "n": 1}


def test_log_copy_masks_map_body_key_aware():
    logger, inner = _log_pipeline(Redactor())

    logger.emit(
        body={"event": "login", "email": "li.wei@example.com", "password": "pw", "tries": 2}
    )

    assert inner.get_finished_logs()[0].log_record.body == {
        "event": "login",
        "email": "[REDACTED:email]",
        "password": "[REDACTED:password]",
        "tries": 2,
    }


def test_log_masking_error_still_exports_with_strings_replaced(monkeypatch):
    monkeypatch.delenv(RAISE_ENV, raising=False)
    logger, inner = _log_pipeline(_Broken())

    logger.emit(body="password=hunter22", attributes={"n": 1, "s": "x"})

    record = inner.get_finished_logs()[0].log_record
    assert record.body == ERROR_MARKER
    assert dict(record.attributes) == {"n": 1, "s": ERROR_MARKER}
