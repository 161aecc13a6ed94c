"""Standard ``logging`` records out two ways: JSON lines on stdout and OTLP log records.

``install()`` puts two handlers on the root logger, so records from the application, from
uvicorn, Celery and from libraries all take both ways:

- stdout: one JSON object per line (``OTEL_OBS_LOG_FORMAT=json``, the default) with
  ``timestamp`` (RFC 3339, UTC), ``level``, ``logger``, ``message``, ``service.name``,
  ``trace_id`` and ``span_id`` (lower-case hex, only inside a span), ``request_id``,
  ``exception`` (``type``, ``message``, ``stack``) and the record's extra fields; or one
  readable line (``console``). Everything is masked here by the redactor.
- OTLP: the handler of opentelemetry-instrumentation-logging, minus the records of
  otel-obs's and the SDK's own loggers, so a failing export can never log about itself
  into the export. Masking happens once, on the exporter side (``RedactingLogExporter``).

A line logged outside the request's span but for that request still carries the
request's trace id. uvicorn's (gunicorn's, hypercorn's) own lines, such as "Exception in
ASGI application", written after the server span ended, take the SERVER span last started
in their task. Any other code can tie its lines to a request with
``bind_request_context()``. Both outputs fall back to these only when no span is current.

uvicorn, gunicorn, hypercorn and Celery give their loggers handlers of their own that do
not propagate; those console handlers are removed and the loggers propagate, so each of
their records is written once, as JSON, and exported once. This is re-applied after
every ``logging.config.dictConfig``/``fileConfig`` (uvicorn configures logging after a
zero-code start), and Celery's own logging set-up is replaced through its
``setup_logging`` signal.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.abc
import importlib.util
import json
import logging
import logging.config
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext

from otel_obs import semconv
from otel_obs._diag import is_internal_logger
from otel_obs._guard import guard

__all__ = [
    "ADOPTED_LOGGERS",
    "ConsoleFormatter",
    "JsonFormatter",
    "adopt_loggers",
    "bind_request_context",
    "install",
    "installed_handlers",
    "request_context",
    "reset_request_context",
    "uninstall",
]

# Loggers that servers and workers give their own non-propagating console handlers.
ADOPTED_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "uvicorn.asgi",
    "gunicorn",
    "gunicorn.error",
    "gunicorn.access",
    "hypercorn.error",
    "hypercorn.access",
    "celery",
    "celery.task",
    "celery.redirected",
)

# The logging instrumentation's own switch for attaching a second OTLP handler.
_INSTRUMENTATION_HANDLER_ENV = "OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION"

# LogRecord attributes that are not "extra" fields.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
    "taskName",
}
_PLAIN_TYPES = (str, int, float, bool, type(None))
_ATTRIBUTE_TYPES = (str, int, float, bool, bytes, list, tuple, dict)


# --- the request a record belongs to ----------------------------------------------------

_request_context: contextvars.ContextVar[tuple[SpanContext, str | None] | None] = (
    contextvars.ContextVar("otel_obs_log_request", default=None)
)


def bind_request_context(
    span_context: SpanContext, request_id: str | None = None
) -> contextvars.Token[Any]:
    """Tie records logged from now on, in this context, to a request's span and id.

    Used when no span is current: the server's access-log line and error handlers that run
    after the server span ended. Returns a token for ``reset_request_context``.
    """
    return _request_context.set((span_context, request_id))


def reset_request_context(token: contextvars.Token[Any]) -> None:
    with contextlib.suppress(ValueError):  # set in another context: nothing to undo here
        _request_context.reset(token)


@contextlib.contextmanager
def request_context(span_context: SpanContext, request_id: str | None = None) -> Iterator[None]:
    """``bind_request_context`` for the duration of a ``with`` block."""
    token = bind_request_context(span_context, request_id)
    try:
        yield
    finally:
        reset_request_context(token)


# The SERVER span most recently started in this context (one asyncio task per request in
# ASGI servers) and, once it ended, its request id. Used only for the server's own
# loggers, whose access and error lines can come after the span ended; an application
# line outside any span stays without ids.
_last_server_request: contextvars.ContextVar[tuple[SpanContext, str | None] | None] = (
    contextvars.ContextVar("otel_obs_last_server_request", default=None)
)
_SERVER_LOGGER_PREFIXES = ("uvicorn.", "gunicorn.", "hypercorn.")


def _bound_request(logger_name: str) -> tuple[SpanContext, str | None] | None:
    bound = _request_context.get()
    if bound is None and logger_name.startswith(_SERVER_LOGGER_PREFIXES):
        bound = _last_server_request.get()
    return bound


def _span_context(logger_name: str = "") -> SpanContext | None:
    """The current span's context, else the bound request's; None outside both."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        return span_context
    bound = _bound_request(logger_name)
    return bound[0] if bound is not None and bound[0].is_valid else None


def _request_id(logger_name: str = "") -> str | None:
    web = sys.modules.get("otel_obs.web")
    if web is not None:
        try:
            request_id = web.current_request_id()
        except Exception:  # noqa: BLE001 (a log line must not fail on its request id)
            request_id = None
        if request_id:
            return str(request_id)
    bound = _bound_request(logger_name)
    return bound[1] if bound is not None else None


class _ServerSpanTracker(SpanProcessor):
    """A span processor remembering, per context, the SERVER span last started there."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if _installed is not None and span.kind is trace.SpanKind.SERVER:
            _last_server_request.set((span.get_span_context(), None))

    def on_end(self, span: Any) -> None:
        # Ending runs in the request's context too; the request id is on the span by now.
        if _installed is None or span.kind is not trace.SpanKind.SERVER:
            return
        request_id = (span.attributes or {}).get(semconv.HTTP_REQUEST_ID)
        if isinstance(request_id, (list, tuple)):
            request_id = request_id[0] if request_id else None
        _last_server_request.set((span.get_span_context(), request_id))


_tracked_providers: list[Any] = []


def _track_server_spans() -> None:
    provider = trace.get_tracer_provider()
    if not hasattr(provider, "add_span_processor"):
        return
    if any(tracked is provider for tracked in _tracked_providers):
        return
    provider.add_span_processor(_ServerSpanTracker())
    _tracked_providers.append(provider)


# --- formatting -------------------------------------------------------------------------


class _Clock:
    """RFC 3339 UTC timestamps with milliseconds; the seconds part is reused while equal."""

    __slots__ = ("_cached",)

    def __init__(self) -> None:
        # One tuple, replaced whole, so that threads never pair a second with another's prefix.
        self._cached = (-1, "")

    def format(self, created: float) -> str:
        second = int(created)
        cached_second, prefix = self._cached
        if second != cached_second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._cached = (second, prefix)
        return f"{prefix}.{int((created - second) * 1000):03d}Z"


class _MaskingFormatter(logging.Formatter):
    """What the JSON and console formats share: masking and the exception fields."""

    def __init__(self, service_name: str = "unknown_service", redactor: Any = None):
        super().__init__()
        self.service_name = service_name
        enabled = redactor is not None and getattr(redactor, "enabled", True)
        self._redactor = redactor if enabled else None
        self._clock = _Clock()

    def _mask(self, text: str) -> str:
        if self._redactor is None:
            return text
        try:
            return self._redactor.redact_text(text)
        except Exception:  # noqa: BLE001 (never write what could not be masked)
            from otel_obs.redact import ERROR_MARKER

            return ERROR_MARKER

    def _mask_extra(self, key: str, value: Any) -> Any:
        if not isinstance(value, _PLAIN_TYPES) and not isinstance(value, (list, tuple, dict)):
            value = str(value)
        if self._redactor is None:
            return value
        try:
            return self._redactor.redact_value(key, value)
        except Exception:  # noqa: BLE001
            from otel_obs.redact import ERROR_MARKER

            return ERROR_MARKER

    def _exception(self, record: logging.LogRecord) -> dict[str, str] | None:
        exc_info = record.exc_info
        if not exc_info or exc_info[0] is None:
            return None
        exc_type, exc_value, exc_tb = exc_info
        stack = "".join(traceback.format_exception(exc_type, exc_value, exc_tb))
        return {
            "type": exc_type.__name__,
            "message": self._mask(str(exc_value)),
            "stack": self._mask(stack.rstrip("\n")),
        }


class JsonFormatter(_MaskingFormatter):
    """One JSON object per record, every text field masked."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "timestamp": self._clock.format(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": self._mask(record.getMessage()),
            "service.name": self.service_name,
        }
        span_context = _span_context(record.name)
        if span_context is not None:
            document["trace_id"] = format(span_context.trace_id, "032x")
            document["span_id"] = format(span_context.span_id, "016x")
        request_id = _request_id(record.name)
        if request_id is not None:
            document["request_id"] = request_id
        exception = self._exception(record)
        if exception is not None:
            document["exception"] = exception
        if record.stack_info:
            document["stack_info"] = self._mask(record.stack_info)
        extras = record.__dict__.keys() - _RECORD_FIELDS
        for key in extras:
            if key not in document:
                document[key] = self._mask_extra(key, record.__dict__[key])
        return json.dumps(document, ensure_ascii=False, default=str)


class ConsoleFormatter(_MaskingFormatter):
    """A readable line: time, level, logger, trace and request ids, message, extras."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [self._clock.format(record.created), f"{record.levelname:<8}", record.name]
        span_context = _span_context(record.name)
        if span_context is not None:
            parts.append(
                f"trace_id={span_context.trace_id:032x} span_id={span_context.span_id:016x}"
            )
        request_id = _request_id(record.name)
        if request_id is not None:
            parts.append(f"request_id={request_id}")
        parts.append("-")
        parts.append(self._mask(record.getMessage()))
        for key in sorted(record.__dict__.keys() - _RECORD_FIELDS):
            parts.append(f"{key}={self._mask_extra(key, record.__dict__[key])}")
        line = " ".join(parts)
        exception = self._exception(record)
        if exception is not None:
            line += "\n" + exception["stack"]
        return line


# --- handlers ---------------------------------------------------------------------------


class _ExternalOnly(logging.Filter):
    """Keeps otel-obs's and the SDK's own records out of the OTLP export (no loops)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not is_internal_logger(record.name)


def _otlp_handler_class() -> type[logging.Handler]:
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    class RequestAwareLoggingHandler(LoggingHandler):
        """The instrumentation's handler; outside a span, the bound request's span counts."""

        def emit(self, record: logging.LogRecord) -> None:
            if trace.get_current_span().get_span_context().is_valid:
                super().emit(record)
                return
            span_context = _span_context(record.name)
            if span_context is None:
                super().emit(record)
                return
            token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(span_context)))
            try:
                super().emit(record)
            finally:
                otel_context.detach(token)

        def _get_attributes(self, record: logging.LogRecord) -> Any:
            attributes, event_name = super()._get_attributes(record)
            attributes.pop("color_message", None)
            for key, value in attributes.items():
                if not isinstance(value, _ATTRIBUTE_TYPES):
                    # The SDK would drop it with a warning per record; its text is kept.
                    attributes[key] = str(value)
            request_id = _request_id(record.name)
            if request_id is not None:
                attributes.setdefault("request_id", request_id)
            return attributes, event_name

    return RequestAwareLoggingHandler


class _Installed:
    def __init__(self) -> None:
        self.handlers: list[logging.Handler] = []
        self.root_level: int | None = None
        self.env_set = False
        self.env_before: str | None = None
        self.config_functions: dict[str, Callable[..., Any]] = {}
        self.import_watcher: Any = None


_installed: _Installed | None = None


def install(settings: Any, logger_provider: Any, redactor: Any) -> None:
    """Attach the stdout and OTLP handlers to the root logger; a second call replaces both.

    ``settings`` needs ``service_name``, ``log_format``, ``log_level`` and ``log_stdout``.
    ``logger_provider`` None means no OTLP handler. ``redactor`` masks the stdout output;
    the OTLP copy is masked by the ``RedactingLogExporter`` of the provider's pipeline.
    """
    global _installed
    uninstall()
    state = _Installed()
    root = logging.getLogger()

    if getattr(settings, "log_stdout", True):
        state.handlers.append(_stdout_handler(settings, redactor))
    if logger_provider is not None:
        state.handlers.append(_otlp_handler(logger_provider))
        # The logging instrumentation, loaded later by a zero-code start, would attach a
        # second OTLP handler without our filter; this handler takes its place.
        state.env_set = True
        state.env_before = os.environ.get(_INSTRUMENTATION_HANDLER_ENV)
        os.environ[_INSTRUMENTATION_HANDLER_ENV] = "false"
    for handler in state.handlers:
        root.addHandler(handler)

    state.root_level = root.level
    root.setLevel(_level(getattr(settings, "log_level", "INFO")))
    _installed = state
    with guard("tracking server spans for log correlation"):
        _track_server_spans()
    adopt_loggers()
    _wrap_config_functions(state)
    _take_over_celery_logging(state)


def uninstall() -> None:
    """Remove what ``install`` added and restore the root level and wrapped functions."""
    global _installed
    state, _installed = _installed, None
    if state is None:
        return
    root = logging.getLogger()
    for handler in state.handlers:
        root.removeHandler(handler)
        with contextlib.suppress(Exception):
            handler.flush()
    if state.root_level is not None:
        root.setLevel(state.root_level)
    _unwrap_config_functions(state)
    _release_celery(state)
    if state.env_set and state.env_before is None:
        os.environ.pop(_INSTRUMENTATION_HANDLER_ENV, None)
    elif state.env_set:
        os.environ[_INSTRUMENTATION_HANDLER_ENV] = state.env_before


def installed_handlers() -> list[logging.Handler]:
    return list(_installed.handlers) if _installed is not None else []


def _level(name: Any) -> int:
    if isinstance(name, int):
        return name
    level = logging.getLevelName(str(name).upper())
    return level if isinstance(level, int) else logging.INFO


def _stdout_handler(settings: Any, redactor: Any) -> logging.Handler:
    service_name = getattr(settings, "service_name", None) or "unknown_service"
    if getattr(settings, "log_format", "json") == "console":
        formatter: logging.Formatter = ConsoleFormatter(service_name, redactor)
    else:
        formatter = JsonFormatter(service_name, redactor)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    handler.set_name("otel-obs-stdout")
    return handler


def _otlp_handler(logger_provider: Any) -> logging.Handler:
    handler = _otlp_handler_class()(logger_provider=logger_provider)
    handler.addFilter(_ExternalOnly())
    handler.set_name("otel-obs-otlp")
    return handler


# --- servers and workers ----------------------------------------------------------------


def adopt_loggers(names: tuple[str, ...] = ADOPTED_LOGGERS) -> None:
    """Route the server and worker loggers through the root logger, once per record.

    Their console handlers are removed (ours write the same record as JSON); any other
    handler they have (a file, say) stays.
    """
    if _installed is None:
        return
    for name in names:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if _is_console_handler(handler):
                logger.removeHandler(handler)
        logger.propagate = True


def _is_console_handler(handler: logging.Handler) -> bool:
    if type(handler) is not logging.StreamHandler:
        return False
    return handler.stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)


def _wrap_config_functions(state: _Installed) -> None:
    """After any logging configuration, put our handlers back and adopt the loggers again."""
    for owner, name in (
        (logging.config, "dictConfig"),
        (logging.config, "fileConfig"),
        (logging, "basicConfig"),
    ):
        original = getattr(owner, name)
        state.config_functions[name] = original
        setattr(owner, name, _reapplying(original))


def _unwrap_config_functions(state: _Installed) -> None:
    # A wrapper added on top of ours later stays; ours then passes calls through unchanged.
    for name, original in state.config_functions.items():
        owner = logging if name == "basicConfig" else logging.config
        if getattr(getattr(owner, name), "_otel_obs_wrapped", False):
            setattr(owner, name, original)


def _reapplying(original: Callable[..., Any]) -> Callable[..., Any]:
    def configure_then_reapply(*args: Any, **kwargs: Any) -> Any:
        try:
            return original(*args, **kwargs)
        finally:
            with guard("re-attaching log handlers after logging configuration"):
                _reattach()

    configure_then_reapply._otel_obs_wrapped = True  # type: ignore[attr-defined]
    return configure_then_reapply


def _reattach() -> None:
    state = _installed
    if state is None:
        return
    root = logging.getLogger()
    for handler in state.handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    adopt_loggers()


def _take_over_celery_logging(state: _Installed) -> None:
    """Celery replaces the root logger's handlers unless a ``setup_logging`` receiver exists."""
    if "celery" in sys.modules:
        _connect_celery()
    elif importlib.util.find_spec("celery") is not None:
        state.import_watcher = _CeleryImportWatcher()
        sys.meta_path.insert(0, state.import_watcher)


def _release_celery(state: _Installed) -> None:
    if state.import_watcher is not None:
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(state.import_watcher)
    if "celery.signals" in sys.modules:
        sys.modules["celery.signals"].setup_logging.disconnect(dispatch_uid="otel-obs")


def _connect_celery() -> None:
    with guard("taking over Celery's logging set-up"):
        from celery import signals

        signals.setup_logging.connect(_on_celery_setup_logging, weak=False, dispatch_uid="otel-obs")


def _on_celery_setup_logging(loglevel: Any = None, **_: Any) -> None:
    if _installed is None:
        return
    if loglevel:
        logging.getLogger("celery").setLevel(_level(loglevel))
    _reattach()


class _CeleryImportWatcher(importlib.abc.MetaPathFinder):
    """Connects to Celery's signals once Celery is imported, without importing it first."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "celery":
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            if _installed is not None:
                _installed.import_watcher = None
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_connect(module: Any) -> None:
            exec_module(module)
            _connect_celery()

        spec.loader.exec_module = exec_then_connect  # type: ignore[method-assign]
        return spec
