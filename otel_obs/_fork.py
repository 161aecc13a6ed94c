"""What a forked child renews so that it exports as a process of its own.

The SDK already restarts its batch and metric-reader threads in a child and gives it a new
``service.instance.id``. What it leaves shared with the parent is renewed here, right after
``fork()``: the process attributes of the resource, the metric values counted before the
fork, the HTTP connections of the exporters, and the process the system metrics describe.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import Any

from otel_obs._guard import guard
from otel_obs._resource import process_identity

_logger = logging.getLogger(__name__)

# Every OTLP exporter made by setup, so that a child can stop sharing their connections.
_exporters: weakref.WeakSet[Any] = weakref.WeakSet()


def track_exporter(exporter: Any) -> Any:
    """Remember ``exporter`` so that a forked child renews its connections; return it."""
    _exporters.add(exporter)
    return exporter


def register(providers: Any) -> None:
    """Renew, in every forked child, what ``providers`` (a callable) returns and our exporters."""
    if not hasattr(os, "register_at_fork"):
        return

    def renew() -> None:
        tracer_provider, meter_provider, logger_provider = providers()
        with guard("renewing the resource after fork"):
            _renew_process_identity(tracer_provider, meter_provider, logger_provider)
        with guard("restarting metric series after fork"):
            reset_metric_series(meter_provider)
        with guard("renewing exporter connections after fork"):
            renew_http_sessions()
        with guard("renewing system metrics after fork"):
            _renew_system_metrics_process()

    os.register_at_fork(after_in_child=renew)


def _renew_process_identity(*providers: Any) -> None:
    """Put the child's ``process.pid`` on every signal.

    The providers renew ``service.instance.id`` after a fork themselves, but keep the
    parent's process id, so a worker's telemetry would name the server's master process.
    """
    identity = process_identity()
    for provider in providers:
        update = getattr(provider, "_update_resource", None)
        if update is not None:
            update(identity)


def reset_metric_series(meter_provider: Any) -> None:
    """Start the child's metric series from zero, at the time of the fork.

    The child inherits the parent's counts: kept, each worker would export them again as
    its own, and a sum across instances would count what the parent did once per worker.
    """
    consumer = getattr(meter_provider, "_measurement_consumer", None)
    storages = getattr(consumer, "_reader_storages", None)
    if storages is None:
        _logger.debug("unknown SDK metrics layout: forked children keep the parent's counts")
        return
    from opentelemetry.sdk.metrics._internal.metric_reader_storage import MetricReaderStorage

    for reader in storages:
        if hasattr(reader, "_export_lock"):  # may have been held by the parent's exporter
            reader._export_lock = threading.Lock()
    consumer._lock = threading.Lock()
    consumer._reader_storages = {
        reader: MetricReaderStorage(
            consumer._sdk_config,
            reader._instrument_class_temporality,
            reader._instrument_class_aggregation,
            reader._instrument_class_cardinality_limit,
        )
        for reader in storages
    }


def renew_http_sessions() -> None:
    """Give each HTTP exporter of a forked child a connection pool of its own.

    A child inherits the parent's open keep-alive connections; if both write to one, their
    requests interleave on the wire and the receiver rejects them as garbage.
    """
    for exporter in list(_exporters):
        transport = getattr(getattr(exporter, "_client", None), "_transport", None)
        session = getattr(transport, "_session", None)
        if session is None:
            continue
        import requests

        fresh = requests.Session()
        fresh.verify, fresh.cert, fresh.headers = session.verify, session.cert, session.headers
        transport._session = fresh


def _renew_system_metrics_process() -> None:
    """Point the system metrics at the child: they read the process they were started in."""
    import sys

    module = sys.modules.get("opentelemetry.instrumentation.system_metrics")
    instrumentor = getattr(getattr(module, "SystemMetricsInstrumentor", None), "_instance", None)
    if instrumentor is None or not hasattr(instrumentor, "_proc"):
        return
    import psutil

    instrumentor._proc = psutil.Process(os.getpid())
