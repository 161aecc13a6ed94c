"""FastAPI: the official instrumentation with otel-obs defaults, request ids and health routes.

``instrument_fastapi(app)`` and the zero-code start (``otel-obs run``) both build on
opentelemetry-instrumentation-fastapi through ``fastapi_instrumentor_kwargs()``, so they
behave the same. What otel-obs adds, and why:

- ``/health``, ``/ready`` and ``/metrics`` are left out of traces and metrics by default, so
  probes and scrapes do not drown real traffic (``OTEL_PYTHON_FASTAPI_EXCLUDED_URLS``
  replaces the list);
- the ASGI ``send``/``receive`` spans are off: two or three spans per request that say
  nothing the server span does not (``exclude_spans=[]`` brings them back);
- every request has an id: ``X-Request-ID`` when the client sends a well-formed one, a new
  one otherwise; it goes back on the response, on the server span and, through
  ``current_request_id()``, into every log record of the request;
- ``http.server.request.duration`` stops at the last response byte, so background tasks
  (still traced, in the same trace) do not count as latency;
- ``http.server.response.body.size`` counts the bytes actually sent, streamed bodies
  included (upstream reuses the last ``Content-Length`` seen by any request);
- the stable HTTP conventions: ``http.server.request.duration`` in seconds with
  ``http.route`` from the route template, never the raw path;
- context follows work into thread pools (``run_in_executor``, ``ThreadPoolExecutor``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from timeit import default_timer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import metrics
from opentelemetry.instrumentation.propagators import (
    ResponsePropagator,
    default_setter,
    get_global_response_propagator,
    set_global_response_propagator,
)

from otel_obs import semconv
from otel_obs._diag import diag_logger, warn_once, warn_rate_limited
from otel_obs._guard import guard

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI

__all__ = [
    "DEFAULT_EXCLUDED_URLS",
    "current_request_id",
    "fastapi_instrumentor_kwargs",
    "health_router",
    "instrument_fastapi",
    "propagate_context_into_executors",
    "telemetry_export_health",
    "uninstrument_fastapi",
]

# Root-level probe and scrape paths, with or without a trailing slash. The instrumentation
# searches "scheme://host/path" (no query string); one pattern, checked once per request.
DEFAULT_EXCLUDED_URLS = r"^https?://[^/]+/(?:health|ready|metrics)/?$"
DEFAULT_EXCLUDED_SPANS = ("receive", "send")

_EXCLUDED_URLS_ENV = ("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "OTEL_PYTHON_EXCLUDED_URLS")
_SEMCONV_OPT_IN_ENV = "OTEL_SEMCONV_STABILITY_OPT_IN"

# A client-sent id is kept only if it is short and made of characters that are safe in a
# response header and a log line; anything else is replaced by a fresh id.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=@/-]{1,128}")
_REQUEST_ID_HEADER = semconv.REQUEST_ID_HEADER.encode("latin-1")

# Duration histogram name -> (response-size histogram it pairs with, units per second).
_DURATION_HISTOGRAMS = {
    "http.server.request.duration": ("http.server.response.body.size", 1.0),
    "http.server.duration": ("http.server.response.size", 1000.0),
}
_RESPONSE_SIZE_HISTOGRAMS = {size for size, _ in _DURATION_HISTOGRAMS.values()}


class _RequestState:
    """What otel-obs tracks for the request being handled."""

    __slots__ = ("body_size", "request_id", "response_end", "token")

    def __init__(self, request_id: str):
        self.request_id = request_id
        self.body_size = 0
        self.response_end: float | None = None
        self.token: contextvars.Token[_RequestState | None] | None = None


# Set when the request starts, reset when the instrumentation has recorded its metrics.
# ASGI servers run each request in a task of its own; the reset matters for in-process
# clients that run the app in the caller's context.
_request: contextvars.ContextVar[_RequestState | None] = contextvars.ContextVar(
    "otel_obs_request", default=None
)


def current_request_id() -> str | None:
    """Return the id of the HTTP request being handled, or None outside a request."""
    state = _request.get()
    return None if state is None else state.request_id


# --- instrumenting ----------------------------------------------------------------------


def instrument_fastapi(app: FastAPI, **kwargs: Any) -> FastAPI:
    """Instrument one FastAPI app with otel-obs defaults; a second call changes nothing.

    ``kwargs`` are those of ``FastAPIInstrumentor.instrument_app`` and win over the
    defaults. An app already instrumented (by ``configure()``, ``otel-obs run`` or an
    earlier call) is left as it is; if this call had options, one warning says they were
    not applied.
    """
    with guard("instrumenting FastAPI"):
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        if getattr(app, "_is_instrumented_by_opentelemetry", False):
            _already_instrumented("FastAPI app", kwargs)
            return app

        FastAPIInstrumentor.instrument_app(app, **fastapi_instrumentor_kwargs(**kwargs))
    return app


def _already_instrumented(what: str, kwargs: dict[str, Any]) -> None:
    # configure() and otel-obs run instrument every app, so a further call is common and
    # harmless; it deserves a warning only when options of that call are being dropped.
    if kwargs:
        warn_once(
            f"already-instrumented:{what}",
            "otel-obs: %s already instrumented; the options of this call are ignored (%s)",
            what,
            ", ".join(sorted(kwargs)),
        )
    else:
        diag_logger.debug("otel-obs: %s already instrumented", what)


def uninstrument_fastapi(app: FastAPI) -> None:
    """Remove the instrumentation from ``app``, however it was added; it records nothing more."""
    with guard("uninstrumenting FastAPI"):
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.uninstrument_app(app)
        # FastAPI's own telemetry stands aside while the official middleware is in the
        # stack and would take over once it is gone; its settings live in this dict.
        native = getattr(app, "_telemetry", None)
        if isinstance(native, dict):
            native.update(tracing=False, metrics=False, logs=False)


def fastapi_instrumentor_kwargs(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments for the FastAPI instrumentor with otel-obs defaults.

    The zero-code start merges these into ``FastAPIInstrumentor().instrument()``, and
    ``instrument_fastapi`` passes them to ``instrument_app``. Also switches on, once per
    process, what those arguments cannot carry: the stable HTTP conventions, the
    response tap that sets ``X-Request-ID``, and context propagation into thread pools.
    """
    _use_stable_http_conventions()
    _install_response_tap()
    propagate_context_into_executors()

    kwargs: dict[str, Any] = {
        "excluded_urls": _excluded_urls(),
        "exclude_spans": list(DEFAULT_EXCLUDED_SPANS),
    }
    kwargs.update(overrides)
    kwargs["server_request_hook"] = _request_hook(kwargs.get("server_request_hook"))
    kwargs["meter_provider"] = _ResponseTimedMeterProvider(kwargs.get("meter_provider"))
    return kwargs


def _excluded_urls() -> str:
    for name in _EXCLUDED_URLS_ENV:
        value = os.environ.get(name)
        if value is not None:
            return value
    return DEFAULT_EXCLUDED_URLS


def _use_stable_http_conventions() -> None:
    # The instrumentations read this variable once per process, on first use, so it is
    # set before that and, if another instrumentation came first, in the cache as well.
    from opentelemetry.instrumentation import _semconv

    chosen = {m.strip() for m in os.environ.get(_SEMCONV_OPT_IN_ENV, "").split(",") if m.strip()}
    if chosen & {"http", "http/dup"}:
        return
    os.environ[_SEMCONV_OPT_IN_ENV] = ",".join(sorted(chosen | {"http"}))
    stability = _semconv._OpenTelemetrySemanticConventionStability
    with stability._lock:
        if stability._initialized:
            mapping = stability._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING
            mapping[_semconv._OpenTelemetryStabilitySignalType.HTTP] = _semconv._StabilityMode.HTTP


# --- per request ------------------------------------------------------------------------


def _start_request(span: Any, scope: dict[str, Any]) -> None:
    """Server request hook: give the request its id and state."""
    # 128 random bits in hex: as unique as a UUID4, and far cheaper to make.
    request_id = _incoming_request_id(scope) or os.urandom(16).hex()
    state = _RequestState(request_id)
    state.token = _request.set(state)
    if span.is_recording():
        span.set_attribute(semconv.HTTP_REQUEST_ID, (request_id,))


def _incoming_request_id(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers") or ():
        if name == _REQUEST_ID_HEADER:
            text = value.decode("latin-1")
            return text if _VALID_REQUEST_ID.fullmatch(text) else None
    return None


def _request_hook(user_hook: Callable[..., Any] | None) -> Callable[..., None]:
    if user_hook is None:
        return _start_request

    def on_request(span: Any, scope: dict[str, Any]) -> None:
        _start_request(span, scope)
        try:
            user_hook(span, scope)
        except Exception as error:  # noqa: BLE001 (a user hook must not fail the request)
            warn_rate_limited(
                "fastapi.server_request_hook",
                "otel-obs: the server request hook raised %s; the request went on without it",
                type(error).__name__,
            )

    return on_request


class _ResponseTap(ResponsePropagator):
    """Sees every ASGI message the instrumented app sends, in the request's context.

    The instrumentation calls the global response propagator for each message even when
    the send spans are off, which makes it the one per-message hook that works the same
    for zero-code and explicit set-ups. A propagator set before ours still runs first.
    """

    def __init__(self, inner: ResponsePropagator | None):
        self.inner = inner

    def inject(self, carrier: Any, context: Any = None, setter: Any = default_setter) -> None:
        if self.inner is not None:
            self.inner.inject(carrier, context=context, setter=setter)
        state = _request.get()
        if state is None or type(carrier) is not dict:
            return

        kind = carrier.get("type")
        if kind == "http.response.body":
            state.body_size += len(carrier.get("body", b""))
            if not carrier.get("more_body", False):
                state.response_end = default_timer()
        elif kind == "http.response.start" and not _has_request_id(carrier):
            setter.set(carrier, semconv.REQUEST_ID_HEADER, state.request_id)


def _has_request_id(message: dict[str, Any]) -> bool:
    return any(name.lower() == _REQUEST_ID_HEADER for name, _ in message.get("headers") or ())


def _install_response_tap() -> None:
    current = get_global_response_propagator()
    if not isinstance(current, _ResponseTap):
        set_global_response_propagator(_ResponseTap(current))


class _ResponseTimedMeterProvider:
    """Hands the instrumentation a meter whose request instruments use per-request data.

    The instrumentation records the duration after the whole ASGI call returns, which
    includes background tasks, and the response size from a value shared by all
    requests. The histograms handed out here correct both from ``_RequestState``; the
    active-requests counter, decremented last, ends the request's state.
    """

    def __init__(self, inner: Any = None):
        self._inner = inner

    def get_meter(self, name: str, *args: Any, **kwargs: Any) -> _ResponseTimedMeter:
        provider = self._inner or metrics.get_meter_provider()
        return _ResponseTimedMeter(provider.get_meter(name, *args, **kwargs))


class _ResponseTimedMeter:
    def __init__(self, meter: Any):
        self._meter = meter
        self._durations: dict[str, _ResponseTimedDuration] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._meter, name)

    def create_histogram(self, name: str, *args: Any, **kwargs: Any) -> Any:
        histogram = self._meter.create_histogram(name, *args, **kwargs)
        if name in _DURATION_HISTOGRAMS:
            size_name, per_second = _DURATION_HISTOGRAMS[name]
            duration = _ResponseTimedDuration(histogram, per_second)
            self._durations[size_name] = duration
            return duration
        if name in _RESPONSE_SIZE_HISTOGRAMS and name in self._durations:
            # Recorded by the paired duration histogram, with the bytes really sent.
            self._durations[name].response_size = histogram
            return _NOT_RECORDED
        return histogram

    def create_up_down_counter(self, name: str, *args: Any, **kwargs: Any) -> Any:
        counter = self._meter.create_up_down_counter(name, *args, **kwargs)
        if name == semconv.METRIC_HTTP_SERVER_ACTIVE_REQUESTS:
            return _RequestEndingCounter(counter)
        return counter


class _ResponseTimedDuration:
    __slots__ = ("_histogram", "_per_second", "response_size")

    def __init__(self, histogram: Any, per_second: float):
        self._histogram = histogram
        self._per_second = per_second
        self.response_size: Any = None

    def record(self, amount: float, attributes: Any = None, context: Any = None) -> None:
        state = _request.get()
        if state is not None and state.response_end is not None:
            after_response = (default_timer() - state.response_end) * self._per_second
            amount = max(amount - after_response, 0)
        self._histogram.record(amount, attributes, context=context)
        if state is not None and self.response_size is not None:
            self.response_size.record(state.body_size, attributes, context=context)


class _RequestEndingCounter:
    __slots__ = ("_counter",)

    def __init__(self, counter: Any):
        self._counter = counter

    def add(self, amount: float, attributes: Any = None, context: Any = None) -> None:
        self._counter.add(amount, attributes, context=context)
        if amount < 0:
            _end_request()


def _end_request() -> None:
    state = _request.get()
    if state is None or state.token is None:
        return
    try:
        _request.reset(state.token)
    except ValueError:  # set in another context: only this context's view can be cleared
        _request.set(None)


class _NotRecorded:
    def record(self, *args: Any, **kwargs: Any) -> None:
        pass


_NOT_RECORDED = _NotRecorded()


# --- thread pools -----------------------------------------------------------------------


def propagate_context_into_executors() -> None:
    """Run work submitted to any ThreadPoolExecutor in a copy of the submitter's context.

    ``loop.run_in_executor`` and ``ThreadPoolExecutor.submit`` do not carry context
    variables to the worker thread (``asyncio.to_thread`` does); with this, the active
    span, baggage and request id follow the work as they do with ``to_thread``.
    """
    submit = concurrent.futures.ThreadPoolExecutor.submit
    if getattr(submit, "_otel_obs_original", None) is not None:
        return

    @functools.wraps(submit)
    def submit_in_context(self: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return submit(self, contextvars.copy_context().run, fn, *args, **kwargs)

    submit_in_context._otel_obs_original = submit  # type: ignore[attr-defined]
    concurrent.futures.ThreadPoolExecutor.submit = submit_in_context  # type: ignore[method-assign]


# --- health routes ----------------------------------------------------------------------

Check = Callable[[], "bool | Awaitable[bool]"]


def health_router(
    checks: Mapping[str, Check] | None = None,
    *,
    require_telemetry: bool = False,
    timeout: float = 2.0,
) -> APIRouter:
    """Routes ``/health`` (liveness) and ``/ready`` (readiness) for ``app.include_router``.

    ``/ready`` answers 503 when one of ``checks`` (name -> callable returning truthy,
    sync or async) fails, raises or takes longer than ``timeout`` seconds. It always
    reports whether the telemetry exporters are healthy, but a failing export makes the
    service not ready only with ``require_telemetry=True``: by default telemetry never
    takes a service out of its load balancer. Both paths are excluded from telemetry
    when mounted at the root.
    """
    from fastapi import APIRouter
    from fastapi.responses import JSONResponse

    router = APIRouter(tags=["health"])
    named_checks = dict(checks or {})

    @router.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/ready", include_in_schema=False)
    async def ready() -> JSONResponse:
        results = {name: await _run_check(check, timeout) for name, check in named_checks.items()}
        telemetry = await asyncio.to_thread(telemetry_export_health)
        results["telemetry"] = telemetry
        failing = [n for n, r in results.items() if r == "failing" and n != "telemetry"]
        if require_telemetry and telemetry == "failing":
            failing.append("telemetry")
        status = "not ready" if failing else "ready"
        return JSONResponse(
            {"status": status, "checks": results}, status_code=503 if failing else 200
        )

    return router


async def _run_check(check: Check, timeout: float) -> str:
    try:
        if inspect.iscoroutinefunction(check):
            passed = await asyncio.wait_for(check(), timeout)
        else:
            passed = await asyncio.wait_for(asyncio.to_thread(check), timeout)
    except Exception:  # noqa: BLE001 (a raising check is a failing check)
        return "failing"
    return "ok" if passed else "failing"


_EXPORT_PROBE_TTL = 10.0
# OTLP endpoint -> (when it was probed, result), so a readiness probe stays cheap.
_export_probes: dict[str, tuple[float, str]] = {}


def telemetry_export_health() -> str:
    """Return "ok", "failing" or "disabled" for the telemetry export path of this process.

    "failing" when the last export of any signal failed, "ok" when exports succeed, as
    ``otel_obs.setup`` tracks them. Before the first export (or without otel-obs's set-up),
    whether the OTLP endpoint accepts a TCP connection, checked at most every 10 seconds:
    that tells a missing or unreachable Collector, not one that rejects data.
    """
    from otel_obs import setup

    if setup.is_configured():
        if setup.current_settings().sdk_disabled:
            return "disabled"
        results = [entry.get("ok") for entry in setup.export_health().values()]
        if False in results:
            return "failing"
        if True in results:
            return "ok"

    endpoint = _otlp_endpoint()
    if endpoint is None:
        return "disabled"
    now = time.monotonic()
    probed_at, result = _export_probes.get(endpoint, (-_EXPORT_PROBE_TTL, ""))
    if now - probed_at >= _EXPORT_PROBE_TTL:
        result = _probe(endpoint)
        _export_probes[endpoint] = (now, result)
    return result


def _otlp_endpoint() -> str | None:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() in ("none", ""):
        return None

    grpc = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf").strip() == "grpc"
    return (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or ("http://localhost:4317" if grpc else "http://localhost:4318")
    )


def _probe(endpoint: str) -> str:
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "localhost", port), timeout=0.5):
            return "ok"
    except OSError:
        return "failing"
