"""The manual API: llm_call and llm_span record calls no client instrumentation sees."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from ai_support import TOLERANCE, Sdk, usd
from opentelemetry.trace import SpanKind, StatusCode

from otel_obs import ai, semconv


def test_llm_call_records_span_usage_cost_and_metrics(sdk: Sdk) -> None:
    with ai.llm_call(
        "openai", "gpt-4o", server_address="gateway.internal", server_port=8443
    ) as call:
        call.record_usage(input_tokens=1000, output_tokens=500, cache_read=400)
        call.set_response_model("gpt-4o-2024-08-06")
        call.set_response_id("resp-1")
        call.set_finish_reasons("stop")

    span = sdk.span()
    assert (span.name, span.kind) == ("chat gpt-4o", SpanKind.CLIENT)
    assert span.attributes[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert span.attributes[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-4o-2024-08-06"
    assert span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert span.attributes[semconv.SERVER_ADDRESS] == "gateway.internal"
    assert span.attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 400
    assert span.attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(usd("0.0070"), abs=TOLERANCE)
    assert call.cost == Decimal("0.0070")
    assert sdk.total(semconv.METRIC_GEN_AI_TOKEN_USAGE, **{"gen_ai.token.type": "input"}) == 1000
    assert sdk.total(semconv.METRIC_GEN_AI_TOKEN_USAGE, **{"gen_ai.token.type": "output"}) == 500
    assert sdk.count(semconv.METRIC_GEN_AI_OPERATION_DURATION) == 1
    assert sdk.total(
        semconv.METRIC_GEN_AI_COST, **{"gen_ai.provider.name": "openai"}
    ) == pytest.approx(usd("0.0070"), abs=TOLERANCE)


def test_llm_call_without_usage_is_marked_unavailable(sdk: Sdk) -> None:
    with ai.llm_call("vllm", "llama-3.1-70b"):
        pass

    span = sdk.span()
    assert span.attributes[semconv.OTEL_OBS_USAGE_STATUS] == "unavailable"
    assert span.attributes[semconv.OTEL_OBS_COST_STATUS] == "usage_unavailable"
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes
    assert sdk.points(semconv.METRIC_GEN_AI_TOKEN_USAGE) == []


def test_self_hosted_model_is_priced_from_the_override_file(make_sdk, tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  - match: 'llama-3.1-*'\n    input: 0.20\n    output: 0.60\n")
    sdk = make_sdk(prices_file=str(path))

    with ai.llm_call("vllm", "llama-3.1-70b") as call:
        call.record_usage(input_tokens=10_000, output_tokens=1_000)

    # 10,000 x $0.20/M + 1,000 x $0.60/M
    assert sdk.span().attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(
        usd("0.0026"), abs=TOLERANCE
    )
    assert sdk.span().attributes[semconv.OTEL_OBS_COST_SOURCE] == "override-file prices.yaml"


def test_llm_call_records_the_error_and_reraises(sdk: Sdk) -> None:
    with pytest.raises(TimeoutError), ai.llm_call("vllm", "llama-3.1-70b"):
        raise TimeoutError("model server did not answer")

    span = sdk.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "TimeoutError"
    assert semconv.OTEL_OBS_COST_STATUS not in span.attributes
    assert sdk.total(semconv.METRIC_GEN_AI_ERRORS, **{"error.type": "TimeoutError"}) == 1
    assert (
        sdk.count(semconv.METRIC_GEN_AI_OPERATION_DURATION, **{"error.type": "TimeoutError"}) == 1
    )


def test_decorator_reads_usage_from_the_return_value(sdk: Sdk) -> None:
    @ai.llm_span("anthropic", "claude-sonnet-4-5", usage=lambda r: r["usage"])
    def ask() -> dict:
        return {
            "text": "hi",
            "usage": {"input_tokens": 2459, "cache_read": 2455, "output_tokens": 23},
        }

    assert ask()["text"] == "hi"
    assert sdk.span().attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(
        usd("0.0010935"), abs=TOLERANCE
    )


def test_async_decorator_and_current_handle(sdk: Sdk) -> None:
    @ai.llm_span("openai", "gpt-4o")
    async def ask() -> str:
        ai.current_llm_call().record_usage(input_tokens=1000, output_tokens=500)
        return "ok"

    assert asyncio.run(ask()) == "ok"
    assert sdk.span().attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(
        usd("0.0075"), abs=TOLERANCE
    )


def test_chunks_give_time_to_first_chunk(sdk: Sdk) -> None:
    with ai.llm_call("vllm", "llama-3.1-70b") as call:
        call.record_chunk()
        call.record_chunk()

    assert sdk.count(semconv.METRIC_GEN_AI_TIME_TO_FIRST_CHUNK) == 1
    assert semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in sdk.span().attributes


def test_handle_outside_a_call_does_nothing() -> None:
    handle = ai.current_llm_call()

    handle.record_usage(input_tokens=1)
    handle.set_response_model("x")
    assert handle.cost is None
