"""The real anthropic client against the local server: messages, streams, the stream helper."""

from __future__ import annotations

import asyncio
import gc

import anthropic
import pytest
from ai_support import TOLERANCE, Sdk, llm_headers, usd
from opentelemetry.trace import SpanKind, StatusCode

from otel_obs import ai, semconv
from otel_obs.demo.llm_server import DEFAULT_REPLY

MESSAGES = [{"role": "user", "content": "Say the pangram"}]
CACHE_WRITE = llm_headers(x_llm_usage="input=3,cache_write=12304,cached=0,output=550")


def create(client, **kwargs):
    return client.messages.create(
        model="claude-sonnet-4-5", max_tokens=64, messages=MESSAGES, **kwargs
    )


def test_message_span_reports_total_input_and_cache_write_cost(
    sdk: Sdk, anthropic_client, llm_server
) -> None:
    message = create(anthropic_client, extra_headers=CACHE_WRITE)

    assert message.content[0].text == DEFAULT_REPLY
    span = sdk.span()
    assert (span.name, span.kind) == ("chat claude-sonnet-4-5", SpanKind.CLIENT)
    assert span.attributes[semconv.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID] == "msg_local_1"
    assert span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert span.attributes[semconv.SERVER_PORT] == llm_server.port
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 12307
    assert span.attributes[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 12304
    assert span.attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(
        usd("0.054399"), abs=TOLERANCE
    )
    assert span.attributes[semconv.GEN_AI_USAGE_COST_CACHE_CREATION] == pytest.approx(
        usd("0.04614"), abs=TOLERANCE
    )


def test_create_stream_folds_start_and_delta_usage(sdk: Sdk, anthropic_client) -> None:
    events = list(create(anthropic_client, stream=True, extra_headers=CACHE_WRITE))

    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == DEFAULT_REPLY
    span = sdk.span()
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 12307
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 550
    assert span.attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(
        usd("0.054399"), abs=TOLERANCE
    )
    assert sdk.count(semconv.METRIC_GEN_AI_TIME_TO_FIRST_CHUNK) == 1


def test_stream_helper_text_stream_and_final_message(sdk: Sdk, anthropic_client) -> None:
    with anthropic_client.messages.stream(
        model="claude-sonnet-4-5", max_tokens=64, messages=MESSAGES, extra_headers=CACHE_WRITE
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == DEFAULT_REPLY
    assert final.usage.output_tokens == 550
    assert sdk.span().attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(
        usd("0.054399"), abs=TOLERANCE
    )


def test_stream_helper_left_early_ends_its_span(sdk: Sdk, anthropic_client) -> None:
    with anthropic_client.messages.stream(
        model="claude-sonnet-4-5", max_tokens=64, messages=MESSAGES
    ) as stream:
        for _ in stream:
            break

    span = sdk.span()
    assert span.attributes[semconv.GEN_AI_RESPONSE_MODEL] == "claude-sonnet-4-5"
    assert (
        span.attributes[semconv.OTEL_OBS_COST_STATUS] == "usage_incomplete"
    )  # no output count yet


def test_create_stream_dropped_unread_ends_its_span(sdk: Sdk, anthropic_client) -> None:
    stream = create(anthropic_client, stream=True)
    del stream
    gc.collect()

    assert len(sdk.spans()) == 1


def test_rate_limit_error_is_recorded(sdk: Sdk, anthropic_client) -> None:
    with pytest.raises(anthropic.RateLimitError):
        create(anthropic_client, extra_headers=llm_headers(x_llm_scenario="error=429"))

    span = sdk.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "RateLimitError"


def test_stream_helper_error_is_recorded(sdk: Sdk, anthropic_client) -> None:
    with (
        pytest.raises(anthropic.InternalServerError),
        anthropic_client.messages.stream(
            model="claude-sonnet-4-5",
            max_tokens=64,
            messages=MESSAGES,
            extra_headers=llm_headers(x_llm_scenario="error=500"),
        ),
    ):
        pass

    assert sdk.span().attributes[semconv.ERROR_TYPE] == "InternalServerError"


def test_async_create_stream_and_helper(sdk: Sdk, async_anthropic_client) -> None:
    async def run() -> str:
        await create(async_anthropic_client, extra_headers=CACHE_WRITE)
        events = [
            e
            async for e in await create(
                async_anthropic_client, stream=True, extra_headers=CACHE_WRITE
            )
        ]
        async with async_anthropic_client.messages.stream(
            model="claude-sonnet-4-5", max_tokens=64, messages=MESSAGES, extra_headers=CACHE_WRITE
        ) as stream:
            text = "".join([t async for t in stream.text_stream])
        assert len(events) > 3
        return text

    assert asyncio.run(run()) == DEFAULT_REPLY
    costs = [s.attributes[semconv.GEN_AI_USAGE_COST] for s in sdk.spans()]
    assert costs == pytest.approx([usd("0.054399")] * 3, abs=TOLERANCE)


def test_the_clients_own_spans_give_way_to_ours(make_sdk, llm_server) -> None:
    sdk = make_sdk()
    client = anthropic.Anthropic(
        base_url=llm_server.url,
        api_key="test-key",
        max_retries=0,
        open_telemetry={"tracer_provider": sdk.tracer_provider},
    )

    create(client)
    assert [s.instrumentation_scope.name for s in sdk.spans(scope=None)] == ["otel_obs.ai"]

    ai.uninstrument()
    create(client)
    native = [s for s in sdk.spans(scope=None) if s.instrumentation_scope.name != "otel_obs.ai"]
    assert [s.name for s in native] == ["anthropic.messages.create"]
