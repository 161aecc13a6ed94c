"""The real google-genai client against the local server: generate_content and its stream."""

from __future__ import annotations

import asyncio
import gc

import pytest
from ai_support import TOLERANCE, Sdk, gemini_config, usd
from google.genai import errors
from opentelemetry.trace import SpanKind, StatusCode

from otel_obs import semconv
from otel_obs.demo.llm_server import DEFAULT_REPLY

MODEL = "gemini-2.5-pro"


def test_generate_content_span(sdk: Sdk, gemini_client, llm_server) -> None:
    answer = gemini_client.models.generate_content(
        model=MODEL,
        contents="Say the pangram",
        config=gemini_config(x_llm_usage="input=100000,output=1000"),
    )

    assert answer.text == DEFAULT_REPLY
    span = sdk.span()
    assert (span.name, span.kind) == ("generate_content gemini-2.5-pro", SpanKind.CLIENT)
    assert span.attributes[semconv.GEN_AI_PROVIDER_NAME] == "gcp.gemini"
    assert span.attributes[semconv.GEN_AI_OPERATION_NAME] == "generate_content"
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID] == "gemini-local-1"
    assert span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert span.attributes[semconv.SERVER_PORT] == llm_server.port
    # 100,000 x $1.25/M + 1,000 x $10/M
    assert span.attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(usd("0.135"), abs=TOLERANCE)


def test_stream_takes_usage_from_the_last_chunk(sdk: Sdk, gemini_client) -> None:
    chunks = list(
        gemini_client.models.generate_content_stream(
            model=MODEL,
            contents="Say the pangram",
            config=gemini_config(x_llm_usage="input=250000,output=1000"),
        )
    )

    assert "".join(c.text for c in chunks) == DEFAULT_REPLY
    span = sdk.span()
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 250_000
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 1_000
    # above the 200k tier: 250,000 x $2.50/M + 1,000 x $15/M
    assert span.attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(usd("0.640"), abs=TOLERANCE)
    assert sdk.count(semconv.METRIC_GEN_AI_TIME_TO_FIRST_CHUNK) == 1


def test_stream_abandoned_has_input_but_no_cost(sdk: Sdk, gemini_client) -> None:
    stream = gemini_client.models.generate_content_stream(model=MODEL, contents="Say the pangram")
    next(iter(stream))
    del stream
    gc.collect()

    span = sdk.span()
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS in span.attributes
    assert span.attributes[semconv.OTEL_OBS_USAGE_STATUS] == "partial"
    assert span.attributes[semconv.OTEL_OBS_COST_STATUS] == "usage_incomplete"


def test_error_is_recorded(sdk: Sdk, gemini_client) -> None:
    with pytest.raises(errors.ClientError):
        gemini_client.models.generate_content(
            model=MODEL, contents="hi", config=gemini_config(x_llm_scenario="error=429")
        )

    span = sdk.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "ClientError"


def test_stream_error_is_recorded(sdk: Sdk, gemini_client) -> None:
    with pytest.raises(errors.ServerError):
        list(
            gemini_client.models.generate_content_stream(
                model=MODEL, contents="hi", config=gemini_config(x_llm_scenario="error=500")
            )
        )

    assert sdk.span().attributes[semconv.ERROR_TYPE] == "ServerError"


def test_async_generate_and_stream(sdk: Sdk, gemini_client) -> None:
    config = gemini_config(x_llm_usage="input=1000,output=500,reasoning=1500")

    async def run() -> str:
        await gemini_client.aio.models.generate_content(model=MODEL, contents="hi", config=config)
        stream = await gemini_client.aio.models.generate_content_stream(
            model=MODEL, contents="hi", config=config
        )
        return "".join([chunk.text async for chunk in stream])

    assert asyncio.run(run()) == DEFAULT_REPLY
    spans = sdk.spans()
    assert [s.attributes[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] for s in spans] == [
        1500,
        1500,
    ]
    # thoughts are billed as output: 1000 x $1.25/M + (500 + 1500) x $10/M
    assert [s.attributes[semconv.GEN_AI_USAGE_COST] for s in spans] == pytest.approx(
        [usd("0.02125")] * 2, abs=TOLERANCE
    )


def test_chat_session_calls_are_spans_too(sdk: Sdk, gemini_client) -> None:
    chat = gemini_client.chats.create(model=MODEL)

    chat.send_message("hello")
    chat.send_message("again")

    assert [s.name for s in sdk.spans()] == ["generate_content gemini-2.5-pro"] * 2
