"""The real openai client against the local server: chat completions and responses."""

from __future__ import annotations

import asyncio
import gc

import openai
import pytest
import wrapt
from ai_support import TOLERANCE, Sdk, llm_headers, usd
from opentelemetry.trace import SpanKind, StatusCode

from otel_obs import ai, semconv
from otel_obs.demo.llm_server import DEFAULT_REPLY

MESSAGES = [{"role": "user", "content": "Say the pangram"}]
USAGE = llm_headers(x_llm_usage="input=1000,output=500,cached=400")


def test_chat_completion_span_has_genai_attributes_and_cost(
    sdk: Sdk, openai_client, llm_server
) -> None:
    answer = openai_client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, extra_headers=USAGE
    )

    assert answer.choices[0].message.content == DEFAULT_REPLY
    span = sdk.span()
    assert (span.name, span.kind) == ("chat gpt-4o", SpanKind.CLIENT)
    assert span.attributes[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert span.attributes[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert span.attributes[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o"
    assert span.attributes[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-4o"
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID] == "chatcmpl-local-1"
    assert span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert span.attributes[semconv.SERVER_ADDRESS] == "127.0.0.1"
    assert span.attributes[semconv.SERVER_PORT] == llm_server.port
    assert span.attributes[semconv.OPENAI_API_TYPE] == "chat_completions"
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1000
    assert span.attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 400
    assert span.attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(usd("0.0070"), abs=TOLERANCE)
    assert semconv.GEN_AI_INPUT_MESSAGES not in span.attributes  # content is off by default


def test_chat_stream_injects_include_usage_and_hides_the_extra_chunk(
    sdk: Sdk, openai_client, llm_server
) -> None:
    stream = openai_client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        stream=True,
        extra_headers=llm_headers(x_llm_usage="input=18,output=7"),
    )
    chunks = list(stream)

    assert llm_server.requests[-1].body["stream_options"] == {"include_usage": True}
    assert all(chunk.choices for chunk in chunks)  # the caller never sees choices == []
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == DEFAULT_REPLY
    span = sdk.span()
    assert (
        span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS],
        span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS],
    ) == (
        18,
        7,
    )
    assert span.attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert span.attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert sdk.count(semconv.METRIC_GEN_AI_TIME_TO_FIRST_CHUNK) == 1


def test_instrumented_stream_is_identical_to_the_uninstrumented_one(
    make_sdk, openai_client
) -> None:
    def run() -> list[dict]:
        stream = openai_client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True
        )
        return [chunk.model_dump() for chunk in stream]

    plain = run()
    make_sdk()
    instrumented = run()

    assert instrumented == plain


def test_caller_who_asked_for_usage_gets_the_usage_chunk(
    sdk: Sdk, openai_client, llm_server
) -> None:
    stream = openai_client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=llm_headers(x_llm_usage="input=18,output=7"),
    )
    chunks = list(stream)

    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 18
    assert sdk.span().attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 7


def test_caller_who_declined_usage_keeps_the_request_untouched(
    sdk: Sdk, openai_client, llm_server
) -> None:
    list(
        openai_client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": False}
        )
    )

    assert llm_server.requests[-1].body["stream_options"] == {"include_usage": False}
    assert sdk.span().attributes[semconv.OTEL_OBS_USAGE_STATUS] == "unavailable"


def test_chat_stream_helper_is_one_span(sdk: Sdk, openai_client) -> None:
    with openai_client.chat.completions.stream(
        model="gpt-4o",
        messages=MESSAGES,
        extra_headers=llm_headers(x_llm_usage="input=1000,output=500"),
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()

    assert final.choices[0].message.content == DEFAULT_REPLY
    assert sdk.span().attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(
        usd("0.0075"), abs=TOLERANCE
    )


def test_responses_create(sdk: Sdk, openai_client) -> None:
    answer = openai_client.responses.create(
        model="gpt-4o",
        input="Say the pangram",
        extra_headers=llm_headers(x_llm_usage="input=25,output=40,cached=0"),
    )

    assert answer.output_text == DEFAULT_REPLY
    span = sdk.span()
    assert span.attributes[semconv.OPENAI_API_TYPE] == "responses"
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID] == "resp_local_1"
    assert span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert (
        span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS],
        span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS],
    ) == (
        25,
        40,
    )


def test_responses_stream_helper(sdk: Sdk, openai_client) -> None:
    with openai_client.responses.stream(
        model="gpt-4o",
        input="Say the pangram",
        extra_headers=llm_headers(x_llm_usage="input=1000,output=500"),
    ) as stream:
        text = "".join(
            event.delta for event in stream if event.type == "response.output_text.delta"
        )

    assert text == DEFAULT_REPLY
    assert sdk.span().attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(
        usd("0.0075"), abs=TOLERANCE
    )


def test_raw_response_call_still_gets_usage(sdk: Sdk, openai_client) -> None:
    raw = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=MESSAGES, extra_headers=USAGE
    )

    assert raw.headers["content-type"] == "application/json"
    assert raw.parse().choices[0].message.content == DEFAULT_REPLY
    assert sdk.span().attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(
        usd("0.0070"), abs=TOLERANCE
    )


@pytest.mark.parametrize(
    ("status", "error", "name"),
    [
        (429, openai.RateLimitError, "RateLimitError"),
        (500, openai.InternalServerError, "InternalServerError"),
    ],
)
def test_errors_reach_the_caller_and_are_recorded(
    sdk: Sdk, openai_client, status, error, name
) -> None:
    with pytest.raises(error):
        openai_client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            extra_headers=llm_headers(x_llm_scenario=f"error={status}"),
        )

    span = sdk.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == name
    assert sdk.total(semconv.METRIC_GEN_AI_ERRORS, **{"error.type": name}) == 1
    assert sdk.count(semconv.METRIC_GEN_AI_OPERATION_DURATION, **{"error.type": name}) == 1
    assert sdk.points(semconv.METRIC_GEN_AI_UNPRICED_CALLS) == []


def test_stream_abandoned_and_dropped_still_ends_its_span(sdk: Sdk, openai_client) -> None:
    stream = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    next(stream)
    next(stream)
    del stream
    gc.collect()

    span = sdk.span()
    assert span.attributes[semconv.OTEL_OBS_USAGE_STATUS] == "unavailable"
    assert semconv.GEN_AI_USAGE_COST not in span.attributes
    assert sdk.count(semconv.METRIC_GEN_AI_OPERATION_DURATION) == 1


def test_stream_left_early_by_its_with_block_ends_its_span(sdk: Sdk, openai_client) -> None:
    with openai_client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True
    ) as stream:
        for _ in stream:
            break
        assert sdk.spans() == []

    assert len(sdk.spans()) == 1


def test_stream_closed_early_ends_its_span(sdk: Sdk, openai_client) -> None:
    stream = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    next(stream)
    stream.close()

    assert len(sdk.spans()) == 1


def test_async_chat_and_stream(sdk: Sdk, async_openai_client) -> None:
    async def run() -> str:
        await async_openai_client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, extra_headers=USAGE
        )
        stream = await async_openai_client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, extra_headers=USAGE
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream])

    assert asyncio.run(run()) == DEFAULT_REPLY
    costs = [s.attributes[semconv.GEN_AI_USAGE_COST] for s in sdk.spans()]
    assert costs == pytest.approx([usd("0.0070"), usd("0.0070")], abs=TOLERANCE)


def test_async_responses_stream_and_early_close(sdk: Sdk, async_openai_client) -> None:
    async def run() -> None:
        stream = await async_openai_client.responses.create(
            model="gpt-4o",
            input="hi",
            stream=True,
            extra_headers=llm_headers(x_llm_usage="input=25,output=40"),
        )
        async for _ in stream:
            pass
        early = await async_openai_client.responses.create(model="gpt-4o", input="hi", stream=True)
        await early.__anext__()
        await early.close()

    asyncio.run(run())
    complete, closed = sdk.spans()
    assert complete.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 40
    assert closed.attributes[semconv.OTEL_OBS_USAGE_STATUS] == "unavailable"


def test_instrumentation_off_makes_no_spans(make_sdk, openai_client) -> None:
    sdk = make_sdk(ai_instrumentation=False)

    openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    assert sdk.spans() == []
    assert sdk.points(semconv.METRIC_GEN_AI_TOKEN_USAGE) == []


def test_uninstrument_removes_the_wrappers(make_sdk, openai_client) -> None:
    sdk = make_sdk()
    completions = openai.resources.chat.completions.Completions
    assert isinstance(completions.__dict__["create"], wrapt.FunctionWrapper)
    ai.uninstrument()

    openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    assert sdk.spans() == []
    assert not isinstance(completions.__dict__["create"], wrapt.FunctionWrapper)


def test_time_to_first_chunk_includes_the_wait_for_the_first_byte(sdk: Sdk, openai_client) -> None:
    stream = openai_client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        stream=True,
        extra_headers=llm_headers(x_llm_scenario="delay=0.2,chunk-delay=0.01"),
    )
    list(stream)

    (first_chunk,) = sdk.points(semconv.METRIC_GEN_AI_TIME_TO_FIRST_CHUNK)
    (duration,) = sdk.points(semconv.METRIC_GEN_AI_OPERATION_DURATION)
    assert first_chunk.sum >= 0.2
    assert duration.sum >= first_chunk.sum + 0.01 * 9  # ten more chunks, 10 ms apart


def test_stream_helper_left_early_ends_its_span_once_released(sdk: Sdk, openai_client) -> None:
    with openai_client.chat.completions.stream(model="gpt-4o", messages=MESSAGES) as stream:
        for _ in stream:
            break
    del stream
    gc.collect()

    assert sdk.span().attributes[semconv.OTEL_OBS_USAGE_STATUS] == "unavailable"
