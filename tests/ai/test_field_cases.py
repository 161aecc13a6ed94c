"""Field cases for token usage in streams and cost calculation, through the real clients."""

from __future__ import annotations

import asyncio
import logging

import pytest
from ai_support import TOLERANCE, Sdk, llm_headers, usd
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

from otel_obs import ai, semconv
from otel_obs.demo.llm_server import DEFAULT_REPLY

MESSAGES = [{"role": "user", "content": "hello"}]


def token_totals(sdk: Sdk) -> tuple[float, float]:
    by_type = {
        t: sdk.total(semconv.METRIC_GEN_AI_TOKEN_USAGE, **{"gen_ai.token.type": t})
        for t in ("input", "output")
    }
    return by_type["input"], by_type["output"]


# --- B21: streaming calls record their token usage ----------------------------------------


def test_b21a_responses_stream_usage_from_the_completed_event(sdk: Sdk, openai_client) -> None:
    stream = openai_client.responses.create(
        model="gpt-4o",
        input="hello",
        stream=True,
        extra_headers=llm_headers(x_llm_usage="input=25,output=40,cached=0"),
    )
    text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")

    assert text == DEFAULT_REPLY
    span = sdk.span()
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 25
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 40
    assert token_totals(sdk) == (25, 40)


def test_b21b_chat_stream_usage_from_the_final_chunk_without_choices(
    sdk: Sdk, openai_client
) -> None:
    stream = openai_client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=llm_headers(x_llm_usage="input=18,output=7"),
    )
    chunks = list(stream)

    assert chunks[-1].choices == []  # the final chunk reached the caller and broke nothing
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == DEFAULT_REPLY
    span = sdk.span()
    assert (
        span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS],
        span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS],
    ) == (
        18,
        7,
    )
    assert token_totals(sdk) == (18, 7)


def test_b21c_anthropic_stream_usage_from_start_and_delta(sdk: Sdk, anthropic_client) -> None:
    events = list(
        anthropic_client.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=64,
            messages=MESSAGES,
            stream=True,
            extra_headers=llm_headers(x_llm_usage="input=31,output=12"),
        )
    )

    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == DEFAULT_REPLY
    span = sdk.span()
    assert (
        span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS],
        span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS],
    ) == (
        31,
        12,
    )
    assert token_totals(sdk) == (31, 12)


def test_b21d_chat_stream_without_usage_is_unavailable_never_zero(sdk: Sdk, openai_client) -> None:
    chunks = list(
        openai_client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            stream=True,
            extra_headers=llm_headers(x_llm_scenario="no-usage"),
        )
    )

    assert "".join(c.choices[0].delta.content or "" for c in chunks) == DEFAULT_REPLY
    span = sdk.span()
    assert span.attributes[semconv.OTEL_OBS_USAGE_STATUS] == "unavailable"
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes
    assert semconv.GEN_AI_USAGE_OUTPUT_TOKENS not in span.attributes
    assert semconv.GEN_AI_USAGE_COST not in span.attributes
    assert span.attributes[semconv.OTEL_OBS_COST_STATUS] == "usage_unavailable"
    assert sdk.points(semconv.METRIC_GEN_AI_TOKEN_USAGE) == []
    assert sdk.points(semconv.METRIC_GEN_AI_COST) == []


# --- B23: a null usage field never blanks the span ----------------------------------------


def test_b23_null_input_fields_in_an_anthropic_stream(sdk: Sdk, anthropic_client, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        events = list(
            anthropic_client.messages.create(
                model="claude-sonnet-4-5",
                max_tokens=64,
                messages=MESSAGES,
                stream=True,
                extra_headers=llm_headers(x_llm_usage="input=null,cached=null,output=15"),
            )
        )

    assert [e.type for e in events][-2:] == ["message_delta", "message_stop"]
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == DEFAULT_REPLY
    span = sdk.span()
    assert span.attributes[semconv.GEN_AI_REQUEST_MODEL] == "claude-sonnet-4-5"
    assert span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 15
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes
    assert span.attributes[semconv.OTEL_OBS_COST_STATUS] == "usage_incomplete"
    assert semconv.GEN_AI_USAGE_COST not in span.attributes
    assert len(caplog.records) <= 1
    assert not [r for r in caplog.records if "Invalid type" in r.getMessage()]


def test_b23_response_with_no_usage_object(sdk: Sdk, anthropic_client) -> None:
    message = anthropic_client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=64,
        messages=MESSAGES,
        extra_headers=llm_headers(x_llm_scenario="no-usage"),
    )

    assert message.content[0].text == DEFAULT_REPLY
    span = sdk.span()
    assert span.attributes[semconv.GEN_AI_RESPONSE_MODEL] == "claude-sonnet-4-5"
    assert span.attributes[semconv.OTEL_OBS_USAGE_STATUS] == "unavailable"
    assert span.attributes[semconv.OTEL_OBS_COST_STATUS] == "usage_unavailable"


# --- B24: cache writes billed once ---------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "expected", "total_input"),
    [
        ("input=3,cache_write=12304,cached=0,output=550", "0.054399", 12307),
        ("input=4,cache_write=0,cached=2455,output=23", "0.0010935", 2459),
    ],
    ids=["case1-cache-write", "case2-cache-read"],
)
@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
def test_b24_anthropic_cache_buckets(
    sdk: Sdk, anthropic_client, usage, expected, total_input, streaming
) -> None:
    answer = anthropic_client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=64,
        messages=MESSAGES,
        stream=streaming,
        extra_headers=llm_headers(x_llm_usage=usage),
    )
    if streaming:
        list(answer)

    span = sdk.span()
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == total_input
    assert span.attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(usd(expected), abs=TOLERANCE)
    assert sdk.total(semconv.METRIC_GEN_AI_COST) == pytest.approx(usd(expected), abs=TOLERANCE)


# --- B26: unknown models are never priced at $0 --------------------------------------------


@pytest.mark.parametrize("model", ["acme-llm-9000", ""])
def test_b26_unknown_model_has_tokens_no_cost_a_flag_and_one_warning(
    sdk: Sdk, openai_client, caplog, model
) -> None:
    headers = llm_headers(x_llm_usage="input=1000,output=200")
    with caplog.at_level(logging.WARNING, logger="otel_obs"):
        for _ in range(3):
            openai_client.chat.completions.create(
                model=model, messages=MESSAGES, extra_headers=headers
            )

    for span in sdk.spans():
        assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1000
        assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 200
        assert semconv.GEN_AI_USAGE_COST not in span.attributes
        assert span.attributes[semconv.OTEL_OBS_COST_STATUS] == "unknown_model"
    assert sdk.points(semconv.METRIC_GEN_AI_COST) == []
    assert sdk.total(semconv.METRIC_GEN_AI_UNPRICED_CALLS, **{"gen_ai.request.model": model}) == 3
    assert len([r for r in caplog.records if "no price for model" in r.getMessage()]) == 1


def test_b26_no_model_at_all(sdk: Sdk) -> None:
    with ai.llm_call("openai", None) as call:
        call.record_usage(input_tokens=1000, output_tokens=200)

    span = sdk.span()
    assert span.name == "chat"
    assert span.attributes[semconv.OTEL_OBS_COST_STATUS] == "unknown_model"
    assert semconv.GEN_AI_USAGE_COST not in span.attributes


@pytest.mark.parametrize("model", ["gpt-4o-mini-2024-07-18", "GPT-4o-Mini"])
def test_b26_snapshot_and_case_variant_take_the_base_price(sdk: Sdk, openai_client, model) -> None:
    openai_client.chat.completions.create(
        model=model,
        messages=MESSAGES,
        extra_headers=llm_headers(x_llm_usage="input=1000,output=200"),
    )

    # gpt-4o-mini: 1000 x $0.15/M + 200 x $0.60/M
    assert sdk.span().attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(
        usd("0.00027"), abs=TOLERANCE
    )


# --- B28: metrics for every call, streamed or not, sampled or not --------------------------


def run_b28_traffic(openai_client) -> None:
    headers = llm_headers(x_llm_usage="input=10,output=20")
    for _ in range(20):
        openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers=headers
        )
        for _ in openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=headers
        ):
            pass


@pytest.mark.parametrize("ratio", [1.0, 0.0])
def test_b28_token_duration_and_cost_metrics_ignore_sampling(
    make_sdk, openai_client, ratio: float
) -> None:
    sdk = make_sdk(sampler=TraceIdRatioBased(ratio))

    run_b28_traffic(openai_client)

    for token_type, expected_sum in (("input", 400), ("output", 800)):
        attributes = {"gen_ai.token.type": token_type}
        assert sdk.count(semconv.METRIC_GEN_AI_TOKEN_USAGE, **attributes) == 40
        assert sdk.total(semconv.METRIC_GEN_AI_TOKEN_USAGE, **attributes) == expected_sum
    assert sdk.count(semconv.METRIC_GEN_AI_OPERATION_DURATION) == 40
    assert sdk.count(semconv.METRIC_GEN_AI_TIME_TO_FIRST_CHUNK) == 20
    # 40 calls x (10 x $0.15/M + 20 x $0.60/M)
    assert sdk.total(semconv.METRIC_GEN_AI_COST) == pytest.approx(usd("0.00054"), abs=TOLERANCE)
    assert len(sdk.spans()) == (40 if ratio else 0)


def test_b28_async_streams_count_too(unsampled_sdk: Sdk, async_openai_client) -> None:
    headers = llm_headers(x_llm_usage="input=10,output=20")

    async def run() -> None:
        for _ in range(5):
            async for _ in await async_openai_client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=headers
            ):
                pass

    asyncio.run(run())
    assert token_totals(unsampled_sdk) == (50, 100)
    assert unsampled_sdk.spans() == []
