"""Builds the tracer, meter and logger providers from settings, and shuts them down in time.

``configure()`` and the zero-code configurator both end in ``_configure``, so an app that
calls ``configure()`` and one started by ``otel-obs run`` get the same pipeline:

    spans  -> CostSpanProcessor -> BatchSpanProcessor -> RedactingSpanExporter -> OTLP
    logs   -> BatchLogRecordProcessor -> RedactingLogExporter -> OTLP
    metrics-> PeriodicExportingMetricReader -> OTLP

Every step that belongs to another module (masking, AI, logs) is optional and guarded: a
failure there leaves the rest of telemetry working.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_obs import semconv
from otel_obs._diag import RateLimitFilter, diag_logger
from otel_obs._export import (
    AccountedLogExporter,
    AccountedSpanExporter,
    ExportHealth,
    count_queue_drops,
)
from otel_obs._guard import guard
from otel_obs._resource import build_resource, process_identity
from otel_obs.config import (
    Settings,
    get_settings,
    load_settings,
    report,
    set_active,
    standard_fixes,
)

_logger = logging.getLogger(__name__)

# SDK loggers that log once per failed batch or retry; they are rate-limited, not silenced.
_NOISY_EXPORT_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.sdk.metrics._internal.export",
)

# Entry-point names of the instrumentations that the AI module replaces with its own, so a
# call never gets two spans.
_AI_REPLACED = ("openai", "google-genai")


@dataclass
class _State:
    settings: Settings
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    logger_provider: Any = None
    health: ExportHealth = field(default_factory=ExportHealth)
    zero_code: bool = False
    shut_down: bool = False


_lock = threading.Lock()
_state: _State | None = None


def configure(**overrides: Any) -> Settings:
    """Set up traces, metrics and logs from the environment; ``overrides`` win over it.

    Call it once, early. A second call warns and changes nothing. Returns the settings in
    effect. Never raises: a bad value is reported and replaced by its safe default.
    """
    return _configure(overrides, zero_code=False)


def is_configured() -> bool:
    return _state is not None


def export_health() -> dict[str, dict[str, Any]]:
    """Per signal: whether the last export succeeded, and how many items were dropped."""
    state = _state
    return state.health.snapshot() if state else {}


def _configure(overrides: dict[str, Any], zero_code: bool) -> Settings:
    global _state
    with _lock:
        if _state is not None:
            diag_logger.warning(
                "otel_obs.configure() was already called%s; this call changes nothing",
                " (zero-code start)" if _state.zero_code else "",
            )
            return _state.settings
        settings, findings = load_settings(overrides)
        report(findings)
        _apply_standard_fixes()
        _state = _State(settings=settings, zero_code=zero_code)
        set_active(settings)
        if settings.sdk_disabled:
            diag_logger.info("otel-obs: OTEL_SDK_DISABLED is true; telemetry is off")
            return settings
        with guard("setting up telemetry"):
            _build(_state, instrument=not zero_code)
        return settings


def _apply_standard_fixes() -> None:
    """Replace malformed standard variables in ``os.environ`` so every SDK part agrees."""
    for name, replacement, _ in standard_fixes(os.environ):
        if replacement is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = replacement


def _build(state: _State, instrument: bool) -> None:
    settings = state.settings
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    _rate_limit_export_logs()
    resource = build_resource(settings)
    redactor = _redactor(settings)

    state.meter_provider = _meter_provider(settings, resource)
    metrics.set_meter_provider(state.meter_provider)
    state.health.bind_meter(state.meter_provider)
    state.tracer_provider = _tracer_provider(settings, resource, redactor, state)
    trace.set_tracer_provider(state.tracer_provider)
    state.logger_provider = _logger_provider(settings, resource, redactor, state)
    _refresh_process_identity_after_fork(state)

    with guard("instrumenting AI clients"):
        _ai_instrument(settings, state)
    with guard("installing log handlers"):
        _install_logs(settings, state, redactor)
    if instrument:
        with guard("loading instrumentations"):
            _load_instrumentors(settings)
    atexit.register(_shutdown_at_exit)
    with guard("flushing on SIGTERM"):
        _flush_on_sigterm()


def _refresh_process_identity_after_fork(state: _State) -> None:
    """Give a forked child its own ``process.pid`` on every signal.

    The providers renew ``service.instance.id`` after a fork themselves, but keep the
    parent's process id, so a worker's telemetry would name the server's master process.
    """
    if not hasattr(os, "register_at_fork"):
        return

    def refresh() -> None:
        with guard("refreshing the resource after fork"):
            identity = process_identity()
            for provider in (state.tracer_provider, state.meter_provider, state.logger_provider):
                update = getattr(provider, "_update_resource", None)
                if update is not None:
                    update(identity)

    os.register_at_fork(after_in_child=refresh)


def _rate_limit_export_logs() -> None:
    limiter = RateLimitFilter()
    for name in _NOISY_EXPORT_LOGGERS:
        logging.getLogger(name).addFilter(limiter)


def _redactor(settings: Settings) -> Any:
    if not settings.redact:
        return None
    try:
        from otel_obs.redact import Redactor
    except ImportError:
        _logger.debug("otel_obs.redact is not available; masking is off")
        return None
    with guard("loading masking rules"):
        return Redactor.from_settings(settings)
    return None


def _exporter(signal: str, settings: Settings) -> Any:
    """Return the OTLP exporter of ``signal``; the SDK reads endpoints, headers, timeouts."""
    exporter = _new_exporter(signal, settings)
    _exporters.add(exporter)
    return exporter


# Every OTLP exporter made here, so that a forked child can stop sharing their connections.
_exporters: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _renew_http_sessions() -> None:
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


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_http_sessions)


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


def _views() -> list[View]:
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


def _signal_exporters(signal: str, settings: Settings) -> list[Any]:
    exporters = []
    for name in exporter_names(signal):
        if name == "otlp":
            exporters.append(_exporter(signal, settings))
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


def _meter_provider(settings: Settings, resource: Resource) -> MeterProvider:
    readers = [
        PeriodicExportingMetricReader(exporter)
        for exporter in _signal_exporters("metrics", settings)
    ]
    return MeterProvider(
        resource=resource, metric_readers=readers, views=_views(), shutdown_on_exit=False
    )


def _tracer_provider(
    settings: Settings, resource: Resource, redactor: Any, state: _State
) -> TracerProvider:
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    for exporter in _signal_exporters("traces", settings):
        if redactor is not None:
            from otel_obs.redact import RedactingSpanExporter

            exporter = RedactingSpanExporter(exporter, redactor)
        processor: Any = BatchSpanProcessor(AccountedSpanExporter(exporter, "traces", state.health))
        count_queue_drops(processor, "traces", state.health)
        if settings.ai_instrumentation:
            with guard("adding the AI cost processor"):
                from otel_obs.ai import wrap_span_processor

                processor = wrap_span_processor(processor, settings, state.meter_provider)
        provider.add_span_processor(processor)
    return provider


def _logger_provider(
    settings: Settings, resource: Resource, redactor: Any, state: _State
) -> Any:
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    for exporter in _signal_exporters("logs", settings):
        if redactor is not None:
            from otel_obs.redact import RedactingLogExporter

            exporter = RedactingLogExporter(exporter, redactor)
        processor = BatchLogRecordProcessor(AccountedLogExporter(exporter, "logs", state.health))
        count_queue_drops(processor, "logs", state.health)
        provider.add_log_record_processor(processor)
    set_logger_provider(provider)
    return provider


def _ai_instrument(settings: Settings, state: _State) -> None:
    if not settings.ai_instrumentation:
        return
    from otel_obs.ai import instrument

    instrument(settings, state.tracer_provider, state.meter_provider)


def _install_logs(settings: Settings, state: _State, redactor: Any) -> None:
    try:
        from otel_obs import logs
    except ImportError:
        _logger.debug("otel_obs.logs is not available; log handlers not installed")
        return
    logs.install(settings, state.logger_provider, redactor)


def _uninstall_logs() -> None:
    try:
        from otel_obs import logs
    except ImportError:
        return
    logs.uninstall()


def disabled_instrumentations(settings: Settings) -> list[str]:
    """Entry-point names not to load: the user's list, plus what our settings replace."""
    raw = os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    names = [name.strip() for name in raw.split(",") if name.strip()]
    if not settings.system_metrics:
        names.append("system_metrics")
    if settings.ai_instrumentation:
        names.extend(_AI_REPLACED)
    return names


def _load_instrumentors(settings: Settings) -> None:
    """Load every installed instrumentor the way ``opentelemetry-instrument`` does."""
    from opentelemetry.instrumentation.auto_instrumentation._load import _load_instrumentors

    from otel_obs.distro import ObsDistro

    previous = os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS")
    os.environ["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = ",".join(disabled_instrumentations(settings))
    try:
        _load_instrumentors(ObsDistro())
    finally:
        if previous is None:
            os.environ.pop("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", None)
        else:
            os.environ["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = previous


def shutdown(timeout: float | None = None) -> bool:
    """Flush and stop every provider within ``timeout`` seconds in all (default: settings).

    Returns True when everything was flushed in time. Past the deadline the exporters are
    stopped, what they still held is dropped, and one warning says so.
    """
    state = _state
    if state is None or state.shut_down or state.tracer_provider is None:
        return True
    state.shut_down = True
    budget = state.settings.shutdown_timeout if timeout is None else timeout
    finished = threading.Event()
    worker = threading.Thread(
        target=_shutdown_providers, args=(state, budget, finished), name="otel-obs-shutdown", daemon=True
    )
    worker.start()
    worker.join(budget)
    if finished.is_set():
        return True
    diag_logger.warning(
        "otel-obs: shutdown did not finish within %.1f s; telemetry not yet exported was dropped",
        budget,
    )
    return False


def _shutdown_providers(state: _State, budget: float, finished: threading.Event) -> None:
    deadline = time.monotonic() + budget
    with guard("removing log handlers"):
        _uninstall_logs()
    steps = (
        lambda: state.tracer_provider.shutdown(),
        lambda: state.logger_provider.shutdown(),
        lambda: state.meter_provider.shutdown(
            timeout_millis=max(0.0, deadline - time.monotonic()) * 1000
        ),
    )
    for step in steps:
        with guard("shutting down a provider"):
            step()
    finished.set()


def _shutdown_at_exit() -> None:
    with guard("shutdown at exit"):
        shutdown()


def _flush_on_sigterm() -> None:
    """Flush before the default SIGTERM action ends the process, which skips atexit.

    Only when nobody handles SIGTERM yet. Servers that handle it themselves (uvicorn) put
    the previous handler back and raise the signal again once they have stopped, so they
    end up here too, after their in-flight requests.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return
    signal.signal(signal.SIGTERM, _shutdown_then_terminate)


def _shutdown_then_terminate(signum: int, frame: Any) -> None:
    with guard("shutdown on SIGTERM"):
        shutdown()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _reset_for_tests() -> None:
    """Forget the active configuration (tests only; providers set globally stay set)."""
    global _state
    with _lock:
        _state = None
        set_active(None)


def current_settings() -> Settings:
    return get_settings()
