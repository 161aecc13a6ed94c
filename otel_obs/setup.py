"""Builds the tracer, meter and logger providers from settings, and shuts them down in time.

``configure()`` and the zero-code configurator both end in ``_configure``, so an app that
calls ``configure()`` and one started by ``otel-obs run`` get the same pipeline:

    spans   -> CostSpanProcessor -> BatchSpanProcessor -> Accounted -> Redacting -> OTLP
    logs    -> BatchLogRecordProcessor -> Accounted -> Redacting -> OTLP
    metrics -> PeriodicExportingMetricReader -> Accounted -> OTLP

(``Accounted`` counts what an export drops: ``_export``; the exporters each signal asks for:
``_exporters``; what a forked child renews: ``_fork``; the bounded stop: ``_shutdown``.)
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
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_obs import _fork
from otel_obs._diag import RateLimitFilter, diag_logger
from otel_obs._export import (
    AccountedLogExporter,
    AccountedMetricExporter,
    AccountedSpanExporter,
    ExportHealth,
    count_queue_drops,
)
from otel_obs._exporters import signal_exporters, views
from otel_obs._guard import guard
from otel_obs._resource import build_resource
from otel_obs._shutdown import run_within
from otel_obs.config import (
    BUILTIN_SAMPLERS,
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

    def providers(self) -> tuple[Any, Any, Any]:
        return self.tracer_provider, self.meter_provider, self.logger_provider


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

    state.meter_provider = _meter_provider(settings, resource, state.health)
    metrics.set_meter_provider(state.meter_provider)
    state.health.bind_meter(state.meter_provider)
    state.tracer_provider = _tracer_provider(settings, resource, redactor, state)
    trace.set_tracer_provider(state.tracer_provider)
    state.logger_provider = _logger_provider(settings, resource, redactor, state)
    _fork.register(state.providers)

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


def _meter_provider(
    settings: Settings, resource: Resource, health: ExportHealth
) -> MeterProvider:
    readers = [
        PeriodicExportingMetricReader(AccountedMetricExporter(exporter, "metrics", health))
        for exporter in signal_exporters("metrics", settings)
    ]
    return MeterProvider(
        resource=resource, metric_readers=readers, views=views(), shutdown_on_exit=False
    )


def _tracer_provider(
    settings: Settings, resource: Resource, redactor: Any, state: _State
) -> TracerProvider:
    provider = TracerProvider(resource=resource, sampler=_sampler(), shutdown_on_exit=False)
    processor = _span_export_processor(settings, redactor, state)
    if settings.ai_instrumentation:
        with guard("adding the AI cost processor"):
            from otel_obs.ai import wrap_span_processor

            # Wrapped once, around every exporter: a span is priced and counted once.
            processor = wrap_span_processor(processor, settings, state.meter_provider)
    provider.add_span_processor(processor)
    return provider


def _sampler() -> Any:
    """None for the SDK's own samplers (it reads them from the environment); else a plug-in."""
    name = os.environ.get("OTEL_TRACES_SAMPLER", "").strip()
    if not name or name.lower() in BUILTIN_SAMPLERS:
        return None
    from opentelemetry.sdk._configuration import _import_sampler

    return _import_sampler(name)


def _span_export_processor(settings: Settings, redactor: Any, state: _State) -> Any:
    """One batch processor per span exporter, as one processor (empty with ``none``)."""
    processors = []
    for exporter in signal_exporters("traces", settings):
        if redactor is not None:
            from otel_obs.redact import RedactingSpanExporter

            exporter = RedactingSpanExporter(exporter, redactor)
        processor = BatchSpanProcessor(AccountedSpanExporter(exporter, "traces", state.health))
        count_queue_drops(processor, "traces", state.health)
        processors.append(processor)
    if len(processors) == 1:
        return processors[0]
    combined = SynchronousMultiSpanProcessor()
    for processor in processors:
        combined.add_span_processor(processor)
    return combined


def _logger_provider(
    settings: Settings, resource: Resource, redactor: Any, state: _State
) -> Any:
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    for exporter in signal_exporters("logs", settings):
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
    disabled = ",".join(disabled_instrumentations(settings))
    os.environ["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = disabled
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
    started = time.monotonic()
    with guard("removing log handlers"):
        _uninstall_logs()
    left = budget - (time.monotonic() - started)
    late = run_within(_shutdown_steps(state), left, last=("metrics",))
    if not late:
        return True
    state.health.stop_exporters()
    diag_logger.warning(
        "otel-obs: shutdown did not finish within %.1f s (%s); "
        "telemetry not yet exported was dropped",
        budget,
        ", ".join(late),
    )
    return False


def _shutdown_steps(state: _State) -> dict[str, Any]:
    """One step per provider, each given the seconds left where the SDK takes a timeout."""
    return {
        "traces": lambda _left: state.tracer_provider.shutdown(),
        "logs": lambda _left: state.logger_provider.shutdown(),
        "metrics": lambda left: state.meter_provider.shutdown(timeout_millis=left * 1000),
    }


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
