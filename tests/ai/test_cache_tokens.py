"""Prompt-cache tokens get a counter of their own, so a cache hit ratio can be computed."""

from __future__ import annotations

from ai_support import Sdk, llm_headers

from otel_obs import semconv

MESSAGES = [{"role": "user", "content": "hello"}]


def cache_tokens(sdk: Sdk, operation: str) -> float:
    return sdk.total(semconv.METRIC_GEN_AI_CACHE_TOKENS, **{semconv.OTEL_OBS_CACHE_OPERATION: operation})


def test_openai_cached_prompt_tokens_are_counted_as_cache_reads(sdk: Sdk, openai_client) -> None:
    openai_client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        extra_headers=llm_headers(x_llm_usage="input=1000,output=500,cached=400"),
    )

    assert cache_tokens(sdk, "read") == 400
    assert sdk.count(semconv.METRIC_GEN_AI_CACHE_TOKENS, **{semconv.OTEL_OBS_CACHE_OPERATION: "write"}) == 0


def test_anthropic_cache_reads_and_writes_are_counted_apart(sdk: Sdk, anthropic_client) -> None:
    anthropic_client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=64,
        messages=MESSAGES,
        extra_headers=llm_headers(x_llm_usage="input=4,output=23,cached=2455,cache_write=100"),
    )

    assert (cache_tokens(sdk, "read"), cache_tokens(sdk, "write")) == (2455, 100)


def test_a_call_without_cache_adds_no_cache_points(sdk: Sdk, openai_client) -> None:
    openai_client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        extra_headers=llm_headers(x_llm_usage="input=10,output=5"),
    )

    assert sdk.points(semconv.METRIC_GEN_AI_CACHE_TOKENS) == []
