"""CostSpanProcessor: prices GenAI spans from any instrumentation, exactly once."""

from __future__ import annotations

import logging

import pytest
from ai_support import TOLERANCE, Sdk, make_settings, usd
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from otel_obs import ai, semconv
from otel_obs.ai.processor import CostSpanProcessor

FOREIGN_SCOPE = "some.other.genai.instrumentation"


def foreign_span(sdk: Sdk, attributes: dict) -> None:
    tracer = sdk.tracer_provider.get_tracer(FOREIGN_SCOPE)
    with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes=attributes):
        pass


GPT_4O_CALL = {
    semconv.GEN_AI_OPERATION_NAME: "chat",
    semconv.GEN_AI_PROVIDER_NAME: "openai",
    semconv.GEN_AI_REQUEST_MODEL: "gpt-4o",
    semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-2024-08-06",
    semconv.GEN_AI_USAGE_INPUT_TOKENS: 1000,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 500,
    semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 400,
}


def test_foreign_genai_span_gets_cost_and_source(sdk: Sdk) -> None:
    foreign_span(sdk, GPT_4O_CALL)

    (span,) = sdk.spans(FOREIGN_SCOPE)
    assert span.attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(usd("0.0070"), abs=TOLERANCE)
    assert span.attributes[semconv.GEN_AI_USAGE_COST_INPUT] == pytest.approx(
        usd("0.0015"), abs=TOLERANCE
    )
    assert span.attributes[semconv.GEN_AI_USAGE_COST_CACHE_READ] == pytest.approx(
        usd("0.0005"), abs=TOLERANCE
    )
    assert span.attributes[semconv.GEN_AI_USAGE_COST_OUTPUT] == pytest.approx(
        usd("0.005"), abs=TOLERANCE
    )
    assert span.attributes[semconv.OTEL_OBS_COST_SOURCE].startswith("genai-prices ")
    assert sdk.total(semconv.METRIC_GEN_AI_COST) == pytest.approx(usd("0.0070"), abs=TOLERANCE)
    # 400 cached tokens at $2.50 - $1.25 per million
    assert sdk.total(semconv.METRIC_GEN_AI_COST_SAVED) == pytest.approx(
        usd("0.0005"), abs=TOLERANCE
    )


def test_anthropic_native_span_names_are_priced(sdk: Sdk) -> None:
    # The anthropic client's own spans name cache writes gen_ai.usage.cache_write.input_tokens.
    foreign_span(
        sdk,
        {
            semconv.GEN_AI_PROVIDER_NAME: "anthropic",
            semconv.GEN_AI_OPERATION_NAME: "chat",
            semconv.GEN_AI_REQUEST_MODEL: "claude-sonnet-4-5",
            semconv.GEN_AI_USAGE_INPUT_TOKENS: 12307,
            "gen_ai.usage.cache_write.input_tokens": 12304,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 550,
        },
    )

    (span,) = sdk.spans(FOREIGN_SCOPE)
    assert span.attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(
        usd("0.054399"), abs=TOLERANCE
    )


def test_span_already_priced_is_forwarded_unchanged(sdk: Sdk) -> None:
    foreign_span(sdk, {**GPT_4O_CALL, semconv.GEN_AI_USAGE_COST: 123.0})

    (span,) = sdk.spans(FOREIGN_SCOPE)
    assert span.attributes[semconv.GEN_AI_USAGE_COST] == 123.0
    assert semconv.OTEL_OBS_COST_SOURCE not in span.attributes
    assert sdk.points(semconv.METRIC_GEN_AI_COST) == []


def test_our_own_spans_are_not_priced_twice(sdk: Sdk) -> None:
    with ai.llm_call("openai", "gpt-4o") as call:
        call.record_usage(input_tokens=1000, output_tokens=500)

    assert sdk.span().attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(
        usd("0.0075"), abs=TOLERANCE
    )
    assert sdk.total(semconv.METRIC_GEN_AI_COST) == pytest.approx(usd("0.0075"), abs=TOLERANCE)


def test_non_genai_span_is_the_same_object_forwarded() -> None:
    seen = []

    class Recorder(SimpleSpanProcessor):
        def on_end(self, span):
            seen.append(span)

    processor = CostSpanProcessor(
        Recorder(InMemorySpanExporter()), ai.pricing.Pricer(), _instruments()
    )
    ended = ReadableSpan("GET /users", attributes={"http.route": "/users"})

    processor.on_end(ended)

    assert seen[0] is ended


def test_unknown_foreign_model_is_flagged_and_counted(sdk: Sdk) -> None:
    foreign_span(
        sdk,
        {
            **GPT_4O_CALL,
            semconv.GEN_AI_REQUEST_MODEL: "acme-llm-9000",
            semconv.GEN_AI_RESPONSE_MODEL: "",
        },
    )

    (span,) = sdk.spans(FOREIGN_SCOPE)
    assert semconv.GEN_AI_USAGE_COST not in span.attributes
    assert span.attributes[semconv.OTEL_OBS_COST_STATUS] == "unknown_model"
    assert (
        sdk.total(semconv.METRIC_GEN_AI_UNPRICED_CALLS, **{"gen_ai.request.model": "acme-llm-9000"})
        == 1
    )


def test_foreign_span_without_output_tokens_is_marked_incomplete(sdk: Sdk) -> None:
    attributes = {k: v for k, v in GPT_4O_CALL.items() if k != semconv.GEN_AI_USAGE_OUTPUT_TOKENS}
    foreign_span(sdk, attributes)

    (span,) = sdk.spans(FOREIGN_SCOPE)
    assert span.attributes[semconv.OTEL_OBS_COST_STATUS] == "usage_incomplete"
    assert semconv.GEN_AI_USAGE_COST not in span.attributes


def test_enriched_copy_keeps_identity_timing_events_and_status(sdk: Sdk) -> None:
    tracer = sdk.tracer_provider.get_tracer(FOREIGN_SCOPE)
    with tracer.start_as_current_span(
        "chat gpt-4o", kind=SpanKind.CLIENT, attributes=GPT_4O_CALL
    ) as original:
        original.add_event("gen_ai.choice", {"index": 0})

    (span,) = sdk.spans(FOREIGN_SCOPE)
    assert span.context == original.get_span_context()
    assert (span.start_time, span.end_time, span.kind) == (
        original.start_time,
        original.end_time,
        SpanKind.CLIENT,
    )
    assert [event.name for event in span.events] == ["gen_ai.choice"]
    assert span.resource is original.resource


def test_pricing_failure_still_exports_the_span(
    sdk: Sdk, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    monkeypatch.delenv("OTEL_OBS_RAISE_INTERNAL_ERRORS")
    processor = sdk.tracer_provider._active_span_processor._span_processors[0]

    def broken(*args, **kwargs):
        raise RuntimeError("price table exploded")

    monkeypatch.setattr(processor.pricer, "resolve", broken)
    with caplog.at_level(logging.WARNING, logger="otel_obs"):
        foreign_span(sdk, GPT_4O_CALL)

    (span,) = sdk.spans(FOREIGN_SCOPE)
    assert semconv.GEN_AI_USAGE_COST not in span.attributes
    assert any("add cost to a GenAI span failed" in r.getMessage() for r in caplog.records)


def test_wrap_returns_the_export_processor_when_ai_is_off() -> None:
    export = SimpleSpanProcessor(InMemorySpanExporter())

    assert ai.wrap_span_processor(export, make_settings(ai_instrumentation=False), None) is export
    assert isinstance(ai.wrap_span_processor(export, make_settings(), None), CostSpanProcessor)


def _instruments():
    from otel_obs.ai._metrics import instruments_for

    return instruments_for(None)
