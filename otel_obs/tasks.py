"""Celery: the official instrumentation with task metrics, queue wait and prefork-safe export.

``instrument_celery()`` and the zero-code start (which calls ``on_instrumentor_loaded()``
after loading opentelemetry-instrumentation-celery) add, on top of its spans:

- per task name: ``celery.task.duration``, ``celery.task.outcomes`` (success, failure,
  retry, revoked), ``celery.task.retries`` and ``celery.task.queue_wait``, the time from
  publish (a header stamped by the producer) or from the ETA, whichever is later, to start;
- ``celery.queue.depth`` of the declared queues of a Redis broker, read by the worker's
  main process when metrics are collected;
- prefork pool children that export: the SDK restarts its export threads in a forked
  child, and otel-obs gives the child's metric readers fresh locks and empty state (see
  ``_reset_metrics_in_child``); a flush of spans, metrics and logs before a pool child
  exits (``max_tasks_per_child``, warm shutdown) and when the worker shuts down, so the
  last tasks' spans are not lost;
- context propagation into thread pools used inside tasks.

Clocks: queue wait compares the producer's and the worker's wall clocks, so it is only as
good as their synchronisation.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from timeit import default_timer
from typing import Any

from opentelemetry import metrics, trace

from otel_obs import semconv
from otel_obs._diag import RateLimitFilter, warn_once, warn_rate_limited
from otel_obs._guard import guard, guarded
from otel_obs.version import __version__

__all__ = ["flush_telemetry", "instrument_celery", "on_instrumentor_loaded", "uninstrument_celery"]

# Celery task states -> outcome values of celery.task.outcomes.
_OUTCOMES = {"SUCCESS": "success", "FAILURE": "failure", "RETRY": "retry", "REVOKED": "revoked"}
# At most this many declared queues are measured, so the gauge stays bounded.
MAX_MEASURED_QUEUES = 50
_BROKER_TIMEOUT_S = 2.0

_lock = threading.Lock()
_connected = False
_fork_hook_registered = False
_task_started: dict[str, float] = {}
_ATTRIBUTE_WARNINGS = RateLimitFilter()


def instrument_celery(app: Any = None, **kwargs: Any) -> Any:
    """Instrument Celery in this process (producer and worker) with otel-obs additions.

    Celery's signals are process-wide, so every app in the process is covered; ``app``
    is returned as given. ``kwargs`` go to ``CeleryInstrumentor().instrument()``. Calling
    it again, or after ``configure()`` or ``otel-obs run``, changes nothing (with one
    warning if this call's options are dropped).
    """
    with guard("instrumenting Celery"):
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        instrumentor = CeleryInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            from otel_obs.web import _already_instrumented

            _already_instrumented("Celery", kwargs)
        else:
            instrumentor.instrument(**kwargs)
        on_instrumentor_loaded(meter_provider=kwargs.get("meter_provider"))
    return app


def uninstrument_celery() -> None:
    """Remove the Celery instrumentation and otel-obs's signal handlers."""
    global _connected
    with guard("uninstrumenting Celery"):
        from celery import signals
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        CeleryInstrumentor().uninstrument()
        with _lock:
            for signal, handler in _handlers(signals):
                signal.disconnect(handler)
            _connected = False


def on_instrumentor_loaded(meter_provider: Any = None) -> None:
    """Connect otel-obs's Celery signal handlers once per process (cheap, idempotent).

    Task metrics go to ``meter_provider``, by default the global one.
    """
    global _connected, _fork_hook_registered, _meter_provider, _task_instruments
    with _lock:
        if _connected:
            return
        _meter_provider, _task_instruments = meter_provider, None
        from celery import signals

        for signal, handler in _handlers(signals):
            signal.connect(handler, weak=False)
        _connected = True
        # The instrumentation copies a task's ETA and expiry to its spans as datetimes,
        # which the SDK stringifies with a warning every time: keep one per minute.
        logging.getLogger("opentelemetry.attributes").addFilter(_ATTRIBUTE_WARNINGS)
        if not _fork_hook_registered:
            os.register_at_fork(after_in_child=_reset_metrics_in_child)
            _fork_hook_registered = True

    from otel_obs.web import propagate_context_into_executors

    propagate_context_into_executors()


def _handlers(signals: Any) -> list[tuple[Any, Any]]:
    return [
        (signals.before_task_publish, _stamp_publish_time),
        (signals.task_prerun, _on_task_start),
        (signals.task_postrun, _on_task_end),
        (signals.task_retry, _on_task_retry),
        (signals.task_revoked, _on_task_revoked),
        (signals.worker_process_shutdown, _on_child_exit),
        (signals.worker_shutdown, _on_worker_shutdown),
        (signals.worker_ready, _on_worker_ready),
    ]


# --- metrics ----------------------------------------------------------------------------


class _TaskInstruments:
    def __init__(self, meter: Any):
        self.duration = meter.create_histogram(
            semconv.METRIC_CELERY_TASK_DURATION,
            unit="s",
            description="Time a task ran, from start to its outcome",
            explicit_bucket_boundaries_advisory=semconv.CELERY_DURATION_BUCKETS,
        )
        self.outcomes = meter.create_counter(
            semconv.METRIC_CELERY_TASK_OUTCOMES,
            unit="{task}",
            description="Task runs by outcome: success, failure, retry, revoked or other",
        )
        self.retries = meter.create_counter(
            semconv.METRIC_CELERY_TASK_RETRIES,
            unit="{retry}",
            description="Retries requested by tasks, by the exception that caused them",
        )
        self.queue_wait = meter.create_histogram(
            semconv.METRIC_CELERY_TASK_QUEUE_WAIT,
            unit="s",
            description="Time from publish (or ETA, if later) to the start of the task",
            explicit_bucket_boundaries_advisory=semconv.CELERY_DURATION_BUCKETS,
        )


_meter_provider: Any = None
_task_instruments: _TaskInstruments | None = None


def _instruments() -> _TaskInstruments:
    # Created on first use, so that configure() may come after instrument_celery().
    global _task_instruments
    if _task_instruments is None:
        provider = _meter_provider or metrics.get_meter_provider()
        _task_instruments = _TaskInstruments(provider.get_meter("otel_obs.tasks", __version__))
    return _task_instruments


@guarded("stamping the Celery publish time")
def _stamp_publish_time(headers: dict[str, Any] | None = None, **_: Any) -> None:
    # Overwrites: a retry re-sends the original headers, and its wait starts now.
    if headers is not None:
        headers[semconv.CELERY_PUBLISHED_AT_HEADER] = time.time()


@guarded("measuring a Celery task start")
def _on_task_start(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if task_id is None or task is None:
        return

    _task_started[task_id] = default_timer()
    wait = _queue_wait(task.request)
    if wait is not None:
        attributes = {semconv.CELERY_TASK_NAME: task.name}
        queue = (task.request.delivery_info or {}).get("routing_key")
        if queue:
            attributes[semconv.CELERY_QUEUE] = queue
        _instruments().queue_wait.record(wait, attributes)


def _queue_wait(request: Any) -> float | None:
    published = request.get(semconv.CELERY_PUBLISHED_AT_HEADER)
    if published is None:
        return None

    ready_at = float(published)
    eta = request.get("eta")
    if eta:
        eta_time = eta if isinstance(eta, datetime) else datetime.fromisoformat(str(eta))
        ready_at = max(ready_at, eta_time.timestamp())
    return max(time.time() - ready_at, 0.0)


@guarded("measuring a Celery task outcome")
def _on_task_end(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    if task_id is None or task is None:
        return

    attributes = {
        semconv.CELERY_TASK_NAME: task.name,
        semconv.CELERY_TASK_OUTCOME: _OUTCOMES.get(state or "", "other"),
    }
    started = _task_started.pop(task_id, None)
    instruments = _instruments()
    if started is not None:
        instruments.duration.record(default_timer() - started, attributes)
    instruments.outcomes.add(1, attributes)


@guarded("counting a Celery retry")
def _on_task_retry(sender: Any = None, reason: Any = None, **_: Any) -> None:
    # ``reason`` is Celery's Retry; what made the task retry is its ``exc``, if any.
    cause = getattr(reason, "exc", None)
    attributes = {
        semconv.CELERY_TASK_NAME: getattr(sender, "name", None) or "unknown",
        semconv.ERROR_TYPE: type(cause).__name__ if isinstance(cause, BaseException) else "_OTHER",
    }
    _instruments().retries.add(1, attributes)


@guarded("counting a revoked Celery task")
def _on_task_revoked(sender: Any = None, request: Any = None, **_: Any) -> None:
    # Sent by the worker's main process: a revoked task never reaches task_postrun.
    name = getattr(sender, "name", None) or getattr(request, "task", None) or "unknown"
    attributes = {semconv.CELERY_TASK_NAME: name, semconv.CELERY_TASK_OUTCOME: "revoked"}
    _instruments().outcomes.add(1, attributes)


# --- worker processes -------------------------------------------------------------------


@guarded("resetting metric state after fork")
def _reset_metrics_in_child() -> None:
    """In a forked child, give the SDK's metric readers fresh locks and empty state.

    The SDK restarts its reader threads after fork but keeps their locks and data: a
    pool child forked while the parent collected or exported metrics waits forever on a
    lock no thread will release (at its first collection, and in the flush on exit), and
    every child would export the parent's cumulative counts again as its own.
    """
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics._internal.measurement_consumer import (
        SynchronousMeasurementConsumer,
    )
    from opentelemetry.sdk.metrics._internal.metric_reader_storage import MetricReaderStorage
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    consumers = set()
    for reader in list(MeterProvider._all_metric_readers):
        if isinstance(reader, PeriodicExportingMetricReader):
            reader._export_lock = threading.Lock()
        consumer = getattr(getattr(reader, "_collect", None), "__self__", None)
        if isinstance(consumer, SynchronousMeasurementConsumer):
            consumers.add(consumer)
    for consumer in consumers:
        consumer._lock = threading.Lock()
        consumer._reader_storages = {
            reader: MetricReaderStorage(
                consumer._sdk_config,
                reader._instrument_class_temporality,
                reader._instrument_class_aggregation,
                reader._instrument_class_cardinality_limit,
            )
            for reader in consumer._reader_storages
        }


def _on_child_exit(**_: Any) -> None:
    # A pool child leaves through os._exit: without this, whatever the batch processors
    # still hold (the last task's spans, at max_tasks_per_child=1 all of them) is lost.
    flush_telemetry()


def _on_worker_shutdown(**_: Any) -> None:
    flush_telemetry()


@guarded("flushing telemetry")
def flush_telemetry(timeout: float | None = None) -> bool:
    """Export what the providers hold, within ``timeout`` seconds in all; return success."""
    from opentelemetry import _logs

    deadline = time.monotonic() + (_shutdown_timeout() if timeout is None else timeout)
    flushed = True
    providers = (
        trace.get_tracer_provider(),
        metrics.get_meter_provider(),
        _logs.get_logger_provider(),
    )
    for provider in providers:
        force_flush = getattr(provider, "force_flush", None)
        if force_flush is None:
            continue
        remaining_ms = max(int((deadline - time.monotonic()) * 1000), 1)
        flushed = force_flush(remaining_ms) is not False and flushed
    if not flushed:
        warn_rate_limited("celery.flush", "otel-obs: telemetry flush did not finish in time")
    return flushed


def _shutdown_timeout() -> float:
    try:
        from otel_obs.config import get_settings

        return float(get_settings().shutdown_timeout)
    except ImportError:
        return float(os.environ.get("OTEL_OBS_SHUTDOWN_TIMEOUT") or 5.0)


# --- queue depth ------------------------------------------------------------------------

_watched_apps: set[int] = set()


@guarded("watching Celery queue depth")
def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    app = getattr(sender, "app", None)
    if app is None or id(app) in _watched_apps:
        return

    _watched_apps.add(id(app))
    probe = _QueueDepthProbe(app)
    provider = _meter_provider or metrics.get_meter_provider()
    provider.get_meter("otel_obs.tasks", __version__).create_observable_gauge(
        semconv.METRIC_CELERY_QUEUE_DEPTH,
        callbacks=[probe.observe],
        unit="{task}",
        description="Messages waiting in each declared queue of a Redis broker",
    )


class _QueueDepthProbe:
    """Reads the length of the app's declared queues over its own broker connection."""

    def __init__(self, app: Any):
        self._app = app
        self._connection: Any = None
        self._pid = os.getpid()

    def observe(self, options: Any = None) -> Iterable[Any]:
        from opentelemetry.metrics import Observation

        if os.getpid() != self._pid:  # a forked child inherits the callback, not the job
            return []
        try:
            channel = self._channel()
            if channel is None:
                return []
            queues = sorted(self._app.amqp.queues)[:MAX_MEASURED_QUEUES]
            return [
                Observation(_depth(channel, queue), {semconv.CELERY_QUEUE: queue})
                for queue in queues
            ]
        except Exception as error:  # noqa: BLE001 (a broker hiccup must not stop collection)
            self._close()
            warn_rate_limited(
                "celery.queue-depth",
                "otel-obs: could not read Celery queue depth (%s)",
                type(error).__name__,
            )
            return []

    def _channel(self) -> Any:
        if self._connection is None:
            connection = self._app.connection_for_read(
                transport_options={
                    "socket_timeout": _BROKER_TIMEOUT_S,
                    "socket_connect_timeout": _BROKER_TIMEOUT_S,
                }
            )
            if connection.transport.driver_type != "redis":
                connection.release()
                warn_once(
                    "celery.queue-depth-broker",
                    "otel-obs: celery.queue.depth is measured for Redis brokers only",
                )
                return None
            self._connection = connection
        return self._connection.default_channel

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with guard("closing the queue-depth broker connection"):
                connection.release()


def _depth(channel: Any, queue: str) -> int:
    from kombu.exceptions import ChannelError

    try:
        return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except ChannelError:
        # Redis drops an empty list, so an empty queue does not exist as a key.
        return 0
