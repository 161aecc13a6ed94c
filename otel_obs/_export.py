"""Exporter wrappers that account for what could not be exported.

They sit between a batch processor and the real exporter: an exception from the exporter
becomes a failed result, and every item of a failed export is counted in the
``otel_obs.export.dropped`` self-metric, with a rate-limited warning instead of a line
per batch. The last result per signal feeds readiness checks (``export_health()``).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_obs import semconv
from otel_obs._diag import warn_rate_limited


class ExportHealth:
    """The last export result and the dropped count of each signal."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._signals: dict[str, dict[str, Any]] = {}
        self._counter: Any = None
        self._exporters: weakref.WeakSet[_Accounted] = weakref.WeakSet()

    def bind_meter(self, meter_provider: Any) -> None:
        meter = meter_provider.get_meter("otel_obs")
        self._counter = meter.create_counter(
            semconv.METRIC_EXPORT_DROPPED,
            unit="{item}",
            description="Telemetry items otel-obs could not export and dropped.",
        )

    def track(self, exporter: _Accounted) -> None:
        self._exporters.add(exporter)

    def stop_exporters(self) -> None:
        """Stop every exporter now: retries end, and what comes later is dropped quietly."""
        for exporter in list(self._exporters):
            exporter.stop()

    def record(self, signal: str, items: int, ok: bool, reason: str = "export_failed") -> None:
        with self._lock:
            entry = self._entry(signal)
            entry["ok"] = ok
            entry["last_export"] = time.time()
        if not ok:
            self.drop(signal, items, reason)

    def drop(self, signal: str, items: int, reason: str, warn: bool = True) -> None:
        """Count ``items`` of ``signal`` that will never be exported, and warn (rate-limited)."""
        with self._lock:
            entry = self._entry(signal)
            entry["dropped"] += items
            dropped = entry["dropped"]
        if self._counter is not None:
            self._counter.add(items, {semconv.EXPORT_SIGNAL: signal, semconv.EXPORT_REASON: reason})
        if not warn:
            return
        warn_rate_limited(
            f"export:{signal}",
            "otel-obs: could not export %d %s (%s); %d dropped so far",
            items,
            signal,
            reason,
            dropped,
        )

    def _entry(self, signal: str) -> dict[str, Any]:
        return self._signals.setdefault(signal, {"ok": None, "dropped": 0, "last_export": None})

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {signal: dict(entry) for signal, entry in self._signals.items()}


class _Accounted:
    def __init__(self, inner: Any, signal: str, health: ExportHealth) -> None:
        self._inner = inner
        self._signal = signal
        self._health = health
        self._stop_lock = threading.Lock()
        self._stopped = False
        health.track(self)

    def _export(self, send: Callable[[], Any], items: int, success: Any, failure: Any) -> Any:
        if self._stopped:
            # Past the shutdown deadline: the shutdown warning already said it.
            self._health.drop(self._signal, items, "shutdown", warn=False)
            return failure
        try:
            result = send()
        except Exception:  # noqa: BLE001 (an exporter must not take the worker thread down)
            self._health.record(self._signal, items, ok=False, reason="exception")
            return failure
        if result == success:
            self._health.record(self._signal, items, ok=True)
        elif self._stopped:
            self._health.drop(self._signal, items, "shutdown", warn=False)
        else:
            self._health.record(self._signal, items, ok=False)
        return result

    def stop(self) -> None:
        """Shut the real exporter down once, from whichever caller comes first."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self._inner.shutdown()

    def shutdown(self, *args: Any, **kwargs: Any) -> None:
        self.stop()

    def force_flush(self, timeout_millis: float = 30_000) -> bool:
        flush = getattr(self._inner, "force_flush", None)
        return flush(timeout_millis) if flush else True


class AccountedSpanExporter(_Accounted, SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return self._export(
            lambda: self._inner.export(spans),
            len(spans),
            SpanExportResult.SUCCESS,
            SpanExportResult.FAILURE,
        )


class AccountedLogExporter(_Accounted, LogRecordExporter):
    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        return self._export(
            lambda: self._inner.export(batch),
            len(batch),
            LogRecordExportResult.SUCCESS,
            LogRecordExportResult.FAILURE,
        )


class AccountedMetricExporter(_Accounted, MetricExporter):
    """Counts the data points of a failed metric export; keeps the inner one's preferences."""

    def __init__(self, inner: Any, signal: str, health: ExportHealth) -> None:
        _Accounted.__init__(self, inner, signal, health)
        MetricExporter.__init__(
            self,
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )

    def export(
        self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        return self._export(
            lambda: self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs),
            _count_points(metrics_data),
            MetricExportResult.SUCCESS,
            MetricExportResult.FAILURE,
        )


def _count_points(metrics_data: Any) -> int:
    return sum(
        len(metric.data.data_points)
        for resource_metrics in metrics_data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    )


class _QueueDropCounter:
    """Stands in for a batch processor's own metrics, adding its queue-full drops to ours.

    The SDK's batch processors drop the newest item when their queue is full and tell only
    their metrics object (a no-op unless the SDK's internal metrics are on).
    """

    def __init__(self, inner: Any, signal: str, health: ExportHealth) -> None:
        self._inner = inner
        self._signal = signal
        self._health = health

    def register_queue_size(self, get_queue_size: Any) -> None:
        self._inner.register_queue_size(get_queue_size)

    def finish_items(self, count: int) -> None:
        self._inner.finish_items(count)

    def drop_items(self, count: int, error_type: str = "queue_full") -> None:
        self._inner.drop_items(count, error_type)
        self._health.drop(self._signal, count, error_type)


def count_queue_drops(batch_processor: Any, signal: str, health: ExportHealth) -> None:
    """Count the queue-full drops of a ``BatchSpanProcessor`` or ``BatchLogRecordProcessor``."""
    inner = getattr(batch_processor, "_batch_processor", None)
    if inner is None or not hasattr(inner, "_metrics"):
        return  # another SDK layout: drops stay uncounted, export failures still are
    inner._metrics = _QueueDropCounter(inner._metrics, signal, health)
