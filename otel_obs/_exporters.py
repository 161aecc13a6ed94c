"""The exporters of each signal, chosen as the SDK documents, and the histogram views.

``OTEL_<SIGNAL>_EXPORTER`` picks ``otlp`` (the default), ``console``, both or ``none``; the
OTLP exporter speaks HTTP/protobuf unless ``OTEL_EXPORTER_OTLP[_<SIGNAL>]_PROTOCOL`` says
``grpc``, and reads its endpoint, headers, timeout and compression from the environment
itself. Each OTLP exporter is tracked so that a forked child renews its connections.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

from otel_obs import _fork, semconv
from otel_obs.config import Settings


def otlp_exporter(signal: str, settings: Settings) -> Any:
    """Return the OTLP exporter of ``signal``; the SDK reads endpoints, headers, timeouts."""
    return _fork.track_exporter(_new_exporter(signal, settings))


def _new_exporter(signal: str, settings: Settings) -> Any:
    protocol = os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL", settings.protocol)
    if protocol == "grpc":
        if signal == "traces":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
            return OTLPSpanExporter()
        if signal == "metrics":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
            return OTLPMetricExporter()
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        return OTLPLogExporter()
    if signal == "traces":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        return OTLPSpanExporter()
    if signal == "metrics":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        return OTLPMetricExporter()
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    return OTLPLogExporter()


def views() -> list[View]:
    """Histogram buckets of the conventions for the HTTP and GenAI durations and tokens."""
    buckets = {
        semconv.METRIC_GEN_AI_TOKEN_USAGE: semconv.GEN_AI_TOKEN_USAGE_BUCKETS,
        semconv.METRIC_GEN_AI_OPERATION_DURATION: semconv.GEN_AI_DURATION_BUCKETS,
        semconv.METRIC_GEN_AI_TIME_TO_FIRST_CHUNK: semconv.GEN_AI_DURATION_BUCKETS,
        semconv.METRIC_HTTP_SERVER_REQUEST_DURATION: semconv.HTTP_DURATION_BUCKETS,
    }
    return [
        View(instrument_name=name, aggregation=ExplicitBucketHistogramAggregation(list(bounds)))
        for name, bounds in buckets.items()
    ]


def exporter_names(signal: str) -> list[str]:
    """The exporters ``OTEL_<SIGNAL>_EXPORTER`` asks for: ``otlp`` (default), ``console``."""
    raw = os.environ.get(f"OTEL_{signal.upper()}_EXPORTER", "otlp")
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    return [name for name in dict.fromkeys(names) if name in ("otlp", "console")]


def signal_exporters(signal: str, settings: Settings) -> list[Any]:
    """The exporters of ``signal`` that ``OTEL_<SIGNAL>_EXPORTER`` asks for, made now."""
    exporters = []
    for name in exporter_names(signal):
        if name == "otlp":
            exporters.append(otlp_exporter(signal, settings))
        else:
            exporters.append(_console_exporter(signal))
    return exporters


def _console_exporter(signal: str) -> Any:
    if signal == "traces":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if signal == "metrics":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()
    from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter

    return ConsoleLogRecordExporter()
