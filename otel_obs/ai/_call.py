"""One LLM call from start to end: its span, its usage, its cost and its metrics.

Both the client instrumentation and the manual ``llm_call`` API drive an ``LlmCall``. Token,
duration and cost metrics are recorded here, on the call path, for every call: a sampler that
drops the span changes nothing in the metrics.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_obs import semconv
from otel_obs._diag import warn_once
from otel_obs._guard import guard
from otel_obs.ai import usage as usage_mod
from otel_obs.ai._content import ContentCapture
from otel_obs.ai._metrics import AiInstruments, instruments_for
from otel_obs.ai.pricing import Cost, Pricer, compute_cost
from otel_obs.ai.usage import UNKNOWN, Usage
from otel_obs.version import __version__

TRACER_NAME = "otel_obs.ai"

# Values of otel_obs.cost.status: why a call has no gen_ai.usage.cost.
COST_UNKNOWN_MODEL = "unknown_model"
COST_USAGE_UNAVAILABLE = "usage_unavailable"
COST_USAGE_INCOMPLETE = "usage_incomplete"

# The call our instrumentation is inside, so that nested layers add no second span.
CURRENT_CALL: contextvars.ContextVar[LlmCall | None] = contextvars.ContextVar(
    "otel_obs_current_llm_call", default=None
)


@dataclass
class AiTelemetry:
    """What every LLM call needs: a tracer, the metric instruments, prices, content policy."""

    tracer: trace.Tracer
    instruments: AiInstruments
    pricer: Pricer
    content: ContentCapture | None = None

    @classmethod
    def create(
        cls, settings: Any, tracer_provider: Any = None, meter_provider: Any = None
    ) -> AiTelemetry:
        return cls(
            tracer=trace.get_tracer(
                TRACER_NAME,
                __version__,
                tracer_provider=tracer_provider,
                schema_url=semconv.SCHEMA_URL,
            ),
            instruments=instruments_for(meter_provider),
            pricer=Pricer.from_prices_file(getattr(settings, "prices_file", None)),
            content=ContentCapture.from_settings(settings),
        )


_active: AiTelemetry | None = None
_default: AiTelemetry | None = None
_default_lock = threading.Lock()


def set_active(telemetry: AiTelemetry | None) -> None:
    global _active
    _active = telemetry


def active() -> AiTelemetry | None:
    """The telemetry that ``instrument()`` set up, or ``None`` before it ran."""
    return _active


def current() -> AiTelemetry:
    """The active telemetry, else one built from the global providers and the settings."""
    global _default
    if _active is not None:
        return _active
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = AiTelemetry.create(_settings())
    return _default


def _settings() -> Any:
    try:
        from otel_obs.config import get_settings

        return get_settings()
    except Exception:  # noqa: BLE001 (settings are optional here: prices file and content only)
        import os
        from types import SimpleNamespace

        capture = os.environ.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "")
        return SimpleNamespace(
            prices_file=os.environ.get("OTEL_OBS_PRICES_FILE") or None,
            capture_message_content=capture.strip().lower() in ("1", "true", "yes"),
        )


def error_type(error: BaseException) -> str:
    """A bounded ``error.type``: the exception's class name."""
    return type(error).__qualname__


class LlmCall:
    """An LLM call in progress. ``finish()`` ends it once, whatever calls it first."""

    def __init__(
        self,
        telemetry: AiTelemetry,
        provider: str,
        operation: str,
        request_model: str | None,
        *,
        server_address: str | None = None,
        server_port: int | None = None,
        streaming: bool = False,
        attributes: Mapping[str, Any] | None = None,
    ):
        self.telemetry = telemetry
        self.provider = provider
        self.operation = operation
        self.request_model = request_model if isinstance(request_model, str) else None
        self.streaming = streaming
        self.usage: Usage = UNKNOWN
        self.response_model: str | None = None
        self.response_id: str | None = None
        self.finish_reasons: list[str] = []
        self.output_parts: list[str] = []
        self.cost: Cost | None = None
        self.cost_status: str | None = None
        self.state: dict[str, Any] = {}  # per-provider bookkeeping, e.g. raw stream usage
        self._server = {semconv.SERVER_ADDRESS: server_address, semconv.SERVER_PORT: server_port}
        self._error: str | None = None
        self._first_chunk_s: float | None = None
        self._finished = False
        self._lock = threading.Lock()
        self._start_wall_ns = time.time_ns()
        self._start = time.perf_counter()
        span_attributes = {
            semconv.GEN_AI_OPERATION_NAME: operation,
            semconv.GEN_AI_PROVIDER_NAME: provider,
            **({semconv.GEN_AI_REQUEST_MODEL: self.request_model} if self.request_model else {}),
            **{k: v for k, v in self._server.items() if v is not None},
            **(attributes or {}),
        }
        name = f"{operation} {self.request_model}" if self.request_model else operation
        self.span = telemetry.tracer.start_span(
            name, kind=SpanKind.CLIENT, attributes=span_attributes
        )

    @contextmanager
    def activated(self) -> Iterator[LlmCall]:
        """Make the span current (not ending it) and mark this call as the one in progress."""
        token = CURRENT_CALL.set(self)
        try:
            with trace.use_span(
                self.span, end_on_exit=False, record_exception=False, set_status_on_exception=False
            ):
                yield self
        finally:
            CURRENT_CALL.reset(token)

    # --- what the response tells -------------------------------------------------------

    def add_usage(self, later: Usage) -> None:
        self.usage = self.usage.merged(later)

    def set_response(
        self,
        model: Any = None,
        response_id: Any = None,
        finish_reasons: Iterable[Any] = (),
    ) -> None:
        if isinstance(model, str) and model:
            self.response_model = model
        if isinstance(response_id, str) and response_id:
            self.response_id = response_id
        for reason in finish_reasons:
            if reason is not None:
                self.finish_reasons.append(str(getattr(reason, "value", reason)).lower())

    def chunk(self) -> None:
        """Note that a stream chunk arrived (the first one sets the time to first chunk)."""
        if self._first_chunk_s is None:
            self._first_chunk_s = time.perf_counter() - self._start

    def fail(self, error: BaseException) -> None:
        self._error = error_type(error)
        if self.span.is_recording():
            self.span.record_exception(error)

    def set_input_messages(self, messages: Iterable[tuple[str, str]]) -> None:
        content = self.telemetry.content
        if content is not None and self.span.is_recording():
            self.span.set_attribute(semconv.GEN_AI_INPUT_MESSAGES, content.messages(messages))

    # --- the end -----------------------------------------------------------------------

    def finish(self) -> None:
        """Price the call, record its metrics and end its span; later calls do nothing."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
        duration = time.perf_counter() - self._start
        with guard("ai: price an LLM call"):
            self._price()
        with guard("ai: record LLM call metrics"):
            self._record_metrics(duration)
        with guard("ai: end an LLM call span"):
            self._end_span()

    def _price(self) -> None:
        status = self.usage.status
        if self._error is not None and status == usage_mod.UNAVAILABLE:
            return
        if status != usage_mod.COMPLETE:
            self.cost_status = (
                COST_USAGE_UNAVAILABLE if status == usage_mod.UNAVAILABLE else COST_USAGE_INCOMPLETE
            )
            return
        when = datetime.fromtimestamp(self._start_wall_ns / 1e9, tz=timezone.utc)
        prices = self.telemetry.pricer.resolve(
            [self.response_model, self.request_model], self.provider, when
        )
        if prices is None:
            self.cost_status = COST_UNKNOWN_MODEL
            warn_unknown_model(self.request_model or self.response_model, self.provider)
            return
        self.cost = compute_cost(self.usage, prices)

    def metric_attributes(self) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            semconv.GEN_AI_PROVIDER_NAME: self.provider,
            semconv.GEN_AI_OPERATION_NAME: self.operation,
        }
        if self.request_model:
            attributes[semconv.GEN_AI_REQUEST_MODEL] = self.request_model
        if self.response_model:
            attributes[semconv.GEN_AI_RESPONSE_MODEL] = self.response_model
        attributes.update((k, v) for k, v in self._server.items() if v is not None)
        return attributes

    def _record_metrics(self, duration: float) -> None:
        instruments = self.telemetry.instruments
        attributes = self.metric_attributes()
        context = trace.set_span_in_context(self.span)
        timed = {**attributes, semconv.ERROR_TYPE: self._error} if self._error else attributes
        instruments.duration.record(duration, timed, context=context)
        if self._error:
            instruments.errors.add(1, timed, context=context)
        if self._first_chunk_s is not None:
            instruments.time_to_first_chunk.record(self._first_chunk_s, attributes, context=context)
        for token_type, tokens in (
            ("input", self.usage.input_tokens),
            ("output", self.usage.output_tokens),
        ):
            if tokens is not None:
                instruments.token_usage.record(
                    tokens, {**attributes, semconv.GEN_AI_TOKEN_TYPE: token_type}, context=context
                )
        for operation, tokens in (
            ("read", self.usage.cache_read_tokens),
            ("write", self.usage.cache_write_tokens),
        ):
            if tokens:
                instruments.cache_tokens.add(
                    tokens, {**attributes, semconv.OTEL_OBS_CACHE_OPERATION: operation}, context=context
                )
        record_cost(
            instruments, attributes, self.cost, self.cost_status, self.request_model, context
        )

    def _end_span(self) -> None:
        span = self.span
        if span.is_recording():
            span.set_attributes(self._end_attributes())
            if self._error:
                span.set_status(Status(StatusCode.ERROR, self._error))
        span.end()

    def _end_attributes(self) -> dict[str, Any]:
        attributes: dict[str, Any] = dict(self.usage.attributes())
        if self.usage.status != usage_mod.COMPLETE:
            attributes[semconv.OTEL_OBS_USAGE_STATUS] = self.usage.status
        if self.response_model:
            attributes[semconv.GEN_AI_RESPONSE_MODEL] = self.response_model
        if self.response_id:
            attributes[semconv.GEN_AI_RESPONSE_ID] = self.response_id
        if self.finish_reasons:
            attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = tuple(self.finish_reasons)
        if self._error:
            attributes[semconv.ERROR_TYPE] = self._error
        if self._first_chunk_s is not None:
            attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = self._first_chunk_s
        attributes.update(cost_attributes(self.cost, self.cost_status))
        content = self.telemetry.content
        if content is not None and self.output_parts:
            reason = self.finish_reasons[0] if self.finish_reasons else None
            attributes[semconv.GEN_AI_OUTPUT_MESSAGES] = content.messages(
                [("assistant", "".join(self.output_parts))], finish_reason=reason
            )
        return attributes


def cost_attributes(cost: Cost | None, status: str | None) -> dict[str, Any]:
    """Span attributes for a cost (USD doubles and the price source), or for its absence."""
    if cost is None:
        return {semconv.OTEL_OBS_COST_STATUS: status} if status else {}
    return {
        semconv.GEN_AI_USAGE_COST: float(cost.total),
        semconv.GEN_AI_USAGE_COST_INPUT: float(cost.input),
        semconv.GEN_AI_USAGE_COST_CACHE_READ: float(cost.cache_read),
        semconv.GEN_AI_USAGE_COST_CACHE_CREATION: float(cost.cache_write),
        semconv.GEN_AI_USAGE_COST_OUTPUT: float(cost.output),
        semconv.OTEL_OBS_COST_SOURCE: cost.prices.source,
    }


def record_cost(
    instruments: AiInstruments,
    attributes: Mapping[str, Any],
    cost: Cost | None,
    status: str | None,
    model: str | None,
    context: Any = None,
) -> None:
    """Add a call's cost (and cache savings) to the counters, or count it as unpriced."""
    if cost is not None:
        instruments.cost.add(float(cost.total), attributes, context=context)
        if cost.saved_by_cache > 0:
            instruments.cost_saved.add(float(cost.saved_by_cache), attributes, context=context)
        return
    if status is None:
        return
    unpriced = {
        semconv.GEN_AI_PROVIDER_NAME: attributes.get(semconv.GEN_AI_PROVIDER_NAME, ""),
        semconv.GEN_AI_OPERATION_NAME: attributes.get(semconv.GEN_AI_OPERATION_NAME, ""),
        semconv.GEN_AI_REQUEST_MODEL: instruments.unpriced_model_label(model or ""),
        semconv.OTEL_OBS_COST_STATUS: status,
    }
    instruments.unpriced_calls.add(1, unpriced, context=context)


def warn_unknown_model(model: str | None, provider: str | None) -> None:
    """Warn once per model name that calls to it have no price."""
    shown = (model or "")[:100]
    warn_once(
        f"unknown-model:{provider}:{shown}",
        "otel-obs: no price for model %r (provider %s): its calls get no cost; add it to the "
        "override prices file to price it (warned once per model)",
        shown,
        provider or "unknown",
    )
