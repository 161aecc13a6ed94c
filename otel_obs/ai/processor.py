"""``CostSpanProcessor``: adds cost to GenAI spans made by any instrumentation.

It sits in front of the export processor. When a span ends that follows the GenAI conventions
(``gen_ai.operation.name`` or ``gen_ai.provider.name``, plus token usage) and has no cost yet,
it prices the span from its attributes and forwards an enriched copy; every other span is
forwarded as it is. Spans from otel-obs's own instrumentation are already priced on the call
path (their ``otel_obs.cost.source`` or ``otel_obs.cost.status`` is set), so they pass
untouched and nothing is priced twice.

For such foreign spans the cost counter is added here too, which means it only sees spans the
sampler kept; otel-obs's own instrumentation counts every call.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.util.types import Attributes

from otel_obs import semconv
from otel_obs._guard import guard
from otel_obs.ai import usage as usage_mod
from otel_obs.ai._call import (
    COST_UNKNOWN_MODEL,
    COST_USAGE_INCOMPLETE,
    COST_USAGE_UNAVAILABLE,
    cost_attributes,
    record_cost,
    warn_unknown_model,
)
from otel_obs.ai._metrics import AiInstruments, instruments_for
from otel_obs.ai.pricing import Pricer, compute_cost

_ALREADY_DONE = (
    semconv.GEN_AI_USAGE_COST,
    semconv.OTEL_OBS_COST_SOURCE,
    semconv.OTEL_OBS_COST_STATUS,
)
_GENAI_MARKERS = (semconv.GEN_AI_OPERATION_NAME, semconv.GEN_AI_PROVIDER_NAME, "gen_ai.system")
_TOKEN_MARKERS = (
    semconv.GEN_AI_USAGE_INPUT_TOKENS,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.completion_tokens",
)


class CostSpanProcessor(SpanProcessor):
    """Prices ended GenAI spans, then hands every span to ``export_processor``."""

    def __init__(self, export_processor: SpanProcessor, pricer: Pricer, instruments: AiInstruments):
        self.export_processor = export_processor
        self.pricer = pricer
        self.instruments = instruments

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.export_processor.on_start(span, parent_context=parent_context)

    def _on_ending(self, span: Span) -> None:
        hook = getattr(self.export_processor, "_on_ending", None)
        if hook is not None:
            hook(span)

    def on_end(self, span: ReadableSpan) -> None:
        forwarded = span
        with guard("ai: add cost to a GenAI span"):
            forwarded = self._enriched(span)
        self.export_processor.on_end(forwarded)

    def shutdown(self) -> None:
        self.export_processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.export_processor.force_flush(timeout_millis)

    def _enriched(self, span: ReadableSpan) -> ReadableSpan:
        attributes = span.attributes or {}
        if not needs_pricing(attributes):
            return span
        added = self._price(attributes, span.start_time)
        return copy_with_attributes(span, added) if added else span

    def _price(self, attributes: Mapping[str, Any], start_time_ns: int | None) -> dict[str, Any]:
        usage = usage_mod.from_attributes(attributes, source=_provider(attributes) or "span")
        if usage.status != usage_mod.COMPLETE:
            status = (
                COST_USAGE_UNAVAILABLE
                if usage.status == usage_mod.UNAVAILABLE
                else COST_USAGE_INCOMPLETE
            )
            return {semconv.OTEL_OBS_COST_STATUS: status}
        provider = _provider(attributes)
        request_model = _text(attributes.get(semconv.GEN_AI_REQUEST_MODEL))
        response_model = _text(attributes.get(semconv.GEN_AI_RESPONSE_MODEL))
        when = (
            datetime.fromtimestamp((start_time_ns or 0) / 1e9, tz=timezone.utc)
            if start_time_ns
            else None
        )
        prices = self.pricer.resolve([response_model, request_model], provider, when)
        cost = compute_cost(usage, prices) if prices else None
        status = None if cost else COST_UNKNOWN_MODEL
        if status:
            warn_unknown_model(request_model or response_model, provider)
        metric_attributes = {
            key: value
            for key, value in (
                (semconv.GEN_AI_PROVIDER_NAME, provider),
                (
                    semconv.GEN_AI_OPERATION_NAME,
                    _text(attributes.get(semconv.GEN_AI_OPERATION_NAME)),
                ),
                (semconv.GEN_AI_REQUEST_MODEL, request_model),
                (semconv.GEN_AI_RESPONSE_MODEL, response_model),
            )
            if value
        }
        record_cost(self.instruments, metric_attributes, cost, status, request_model)
        return cost_attributes(cost, status)


def needs_pricing(attributes: Mapping[str, Any]) -> bool:
    """Whether a span is a GenAI call with token usage that nobody has priced yet."""
    if not any(marker in attributes for marker in _GENAI_MARKERS):
        return False
    if any(done in attributes for done in _ALREADY_DONE):
        return False
    return any(marker in attributes for marker in _TOKEN_MARKERS)


def copy_with_attributes(span: ReadableSpan, added: Attributes) -> ReadableSpan:
    """A finished copy of ``span`` with ``added`` attributes (the original stays as it was)."""
    from opentelemetry.attributes import BoundedAttributes

    merged = BoundedAttributes(
        attributes={**(span.attributes or {}), **dict(added or {})}, immutable=True
    )
    merged.dropped = span.dropped_attributes
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=merged,
        events=span._events,
        links=span._links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _provider(attributes: Mapping[str, Any]) -> str | None:
    return _text(attributes.get(semconv.GEN_AI_PROVIDER_NAME)) or _text(
        attributes.get("gen_ai.system")
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def wrap_span_processor(
    export_processor: SpanProcessor, settings: Any, meter_provider: Any = None
) -> SpanProcessor:
    """``export_processor`` behind a ``CostSpanProcessor``; unchanged when AI telemetry is off."""
    if not getattr(settings, "ai_instrumentation", True):
        return export_processor
    pricer = Pricer.from_prices_file(getattr(settings, "prices_file", None))
    return CostSpanProcessor(export_processor, pricer, instruments_for(meter_provider))
