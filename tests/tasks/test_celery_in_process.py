"""Celery instrumentation pieces that need no worker: publish headers, queue wait, forks."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from celery import Celery
from celery.app.task import Context
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_obs import _diag, semconv, tasks


@pytest.fixture
def instrumented() -> Iterator[tuple[Celery, InMemorySpanExporter, TracerProvider]]:
    _diag.reset_for_tests()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = Celery("producer", broker="memory://", set_as_current=False)
    tasks.instrument_celery(app, tracer_provider=tracer_provider, meter_provider=MeterProvider())
    yield app, exporter, tracer_provider
    tasks.uninstrument_celery()
    tracer_provider.shutdown()


def test_task_sent_by_name_carries_trace_context_and_publish_time(instrumented):
    app, exporter, tracer_provider = instrumented
    tracer = tracer_provider.get_tracer("test")

    before = time.time()
    with tracer.start_as_current_span("checkout") as checkout:
        app.send_task("billing.charge", kwargs={"order_id": "ord-0001"})
        still_current = trace.get_current_span()
    after = time.time()

    assert still_current is checkout
    spans = {s.name: s for s in exporter.get_finished_spans()}
    publish = spans["apply_async/billing.charge"]
    assert publish.parent.span_id == checkout.get_span_context().span_id
    with app.connection_for_read() as connection:
        message = connection.SimpleQueue("celery").get(timeout=2)
    trace_id, span_id = message.headers["traceparent"].split("-")[1:3]
    assert int(trace_id, 16) == checkout.get_span_context().trace_id
    assert int(span_id, 16) == publish.context.span_id
    assert before <= message.headers[semconv.CELERY_PUBLISHED_AT_HEADER] <= after


def test_queue_wait_starts_at_publish_or_at_the_eta_if_later():
    now = time.time()
    published_two_seconds_ago = Context(**{semconv.CELERY_PUBLISHED_AT_HEADER: now - 2.0})
    eta = datetime.fromtimestamp(now - 0.5, tz=timezone.utc).isoformat()
    eta_half_a_second_ago = Context(**{semconv.CELERY_PUBLISHED_AT_HEADER: now - 2.0, "eta": eta})
    eta_in_the_past = Context(
        **{
            semconv.CELERY_PUBLISHED_AT_HEADER: now - 2.0,
            "eta": datetime.fromtimestamp(now - 9, tz=timezone.utc),
        }
    )

    assert tasks._queue_wait(published_two_seconds_ago) == pytest.approx(2.0, abs=0.2)
    assert tasks._queue_wait(eta_half_a_second_ago) == pytest.approx(0.5, abs=0.2)
    assert tasks._queue_wait(eta_in_the_past) == pytest.approx(2.0, abs=0.2)
    assert tasks._queue_wait(Context()) is None


def test_instrumenting_again_changes_nothing_and_warns_once_about_dropped_options(
    instrumented, caplog
):
    app, exporter, tracer_provider = instrumented

    with caplog.at_level(logging.WARNING):
        tasks.instrument_celery(app)
        tasks.instrument_celery(app, tracer_provider=tracer_provider)
        tasks.instrument_celery(app, tracer_provider=tracer_provider)
        app.send_task("billing.charge")

    assert [s.name for s in exporter.get_finished_spans()] == ["apply_async/billing.charge"]
    warnings = [r.getMessage() for r in caplog.records if "already instrumented" in r.getMessage()]
    assert len(warnings) == 1
    assert "tracer_provider" in warnings[0]


class BlockingExporter(MetricExporter):
    """Holds the reader's export lock until released, like a slow Collector."""

    def __init__(self) -> None:
        super().__init__()
        self.exporting = threading.Event()
        self.release = threading.Event()

    def export(self, metrics_data, timeout_millis: float = 10_000, **kwargs) -> MetricExportResult:
        self.exporting.set()
        self.release.wait(10)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
        pass


def test_forked_child_neither_waits_on_the_parents_export_nor_repeats_its_counts(instrumented):
    exporter = BlockingExporter()
    periodic = PeriodicExportingMetricReader(exporter, export_interval_millis=10**9)
    memory = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[periodic, memory])
    counter = provider.get_meter("test").create_counter("fixture.count")
    counter.add(5)
    exporting = threading.Thread(target=periodic.collect, daemon=True)
    exporting.start()
    assert exporter.exporting.wait(5)

    pid = os.fork()
    if pid == 0:  # the child: exit code 0 only if it flushes and counts only its own
        try:
            exporter.release.set()  # the parent's thread is gone; nothing else would
            counter.add(1)
            flushed = periodic.force_flush(timeout_millis=3000)
            (point,) = (
                memory.get_metrics_data()
                .resource_metrics[0]
                .scope_metrics[0]
                .metrics[0]
                .data.data_points
            )
            os._exit(0 if flushed and point.value == 1 else 1)
        finally:
            os._exit(2)
    exporter.release.set()
    exporting.join(5)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung on a lock held at fork")
    assert os.waitstatus_to_exitcode(status) == 0
    provider.shutdown()
