"""What otel-obs counts when an export fails, and how the exporters stop at the deadline."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from otel_obs import _diag
from otel_obs._export import AccountedSpanExporter, ExportHealth


class _Refusing(SpanExporter):
    """Refuses every batch, as an exporter does when the endpoint answers 503 for good."""

    def __init__(self) -> None:
        self.batches = 0
        self.shutdowns = 0

    def export(self, spans: Any) -> SpanExportResult:
        self.batches += 1
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.shutdowns += 1


def _accounted(memory_sdk: Any) -> tuple[ExportHealth, _Refusing, AccountedSpanExporter]:
    health = ExportHealth()
    health.bind_meter(memory_sdk.meter_provider)
    inner = _Refusing()
    return health, inner, AccountedSpanExporter(inner, "traces", health)


def test_each_refused_span_is_counted_once_with_signal_and_reason(memory_sdk, caplog) -> None:
    _diag.reset_for_tests()
    health, inner, exporter = _accounted(memory_sdk)
    memory_sdk.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = memory_sdk.tracer_provider.get_tracer("test")

    for _ in range(7):
        tracer.start_span("refused").end()

    [point] = memory_sdk.points("otel_obs.export.dropped")
    assert point.value == 7
    assert dict(point.attributes) == {
        "otel_obs.signal": "traces", "otel_obs.reason": "export_failed"
    }
    assert health.snapshot()["traces"]["dropped"] == 7 and inner.batches == 7
    # One warning for the seven batches: the rest wait for the rate limit.
    assert sum("could not export" in r.getMessage() for r in caplog.records) == 1


def test_stopped_exporter_drops_quietly_and_shuts_the_real_one_once(memory_sdk, caplog) -> None:
    _diag.reset_for_tests()
    health, inner, exporter = _accounted(memory_sdk)

    health.stop_exporters()
    exporter.shutdown()  # the batch processor's own shutdown, arriving later
    result = exporter.export([object(), object()])

    assert result == SpanExportResult.FAILURE
    assert inner.shutdowns == 1 and inner.batches == 0
    [point] = memory_sdk.points("otel_obs.export.dropped")
    assert (point.value, point.attributes["otel_obs.reason"]) == (2, "shutdown")
    assert not [r for r in caplog.records if "could not export" in r.getMessage()]
