"""Usage normalisation: one record whatever the provider's wire format."""

from __future__ import annotations

import logging

import pytest

from otel_obs.ai import usage
from otel_obs.ai.usage import Usage


def test_openai_chat_prompt_tokens_already_include_cached_ones() -> None:
    raw = {
        "prompt_tokens": 1000,
        "completion_tokens": 500,
        "prompt_tokens_details": {"cached_tokens": 400},
        "completion_tokens_details": {"reasoning_tokens": 120},
    }

    assert usage.from_openai_chat(raw) == Usage(
        1000, 500, cache_read_tokens=400, reasoning_tokens=120
    )


def test_openai_responses_usage_maps_input_and_output_details() -> None:
    raw = {
        "input_tokens": 25,
        "output_tokens": 40,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 7},
    }

    assert usage.from_openai_responses(raw) == Usage(
        25, 40, cache_read_tokens=0, reasoning_tokens=7
    )


def test_anthropic_input_total_adds_the_cache_buckets_reported_apart() -> None:
    raw = {
        "input_tokens": 3,
        "cache_creation_input_tokens": 12304,
        "cache_read_input_tokens": 0,
        "output_tokens": 550,
    }

    record = usage.from_anthropic(raw)

    assert record == Usage(12307, 550, cache_read_tokens=0, cache_write_tokens=12304)
    assert record.uncached_input_tokens == 3


def test_anthropic_null_uncached_input_leaves_the_total_unknown() -> None:
    raw = {"input_tokens": None, "cache_read_input_tokens": None, "output_tokens": 15}

    record = usage.from_anthropic(raw)

    assert record.input_tokens is None
    assert record.output_tokens == 15
    assert record.status == usage.PARTIAL
    assert "gen_ai.usage.input_tokens" not in record.attributes()


def test_anthropic_stream_usage_folds_start_and_delta_events() -> None:
    start = {
        "input_tokens": 31,
        "cache_read_input_tokens": 5,
        "cache_creation_input_tokens": None,
        "output_tokens": 1,
    }
    delta = {"output_tokens": 12, "input_tokens": None}

    after_start = usage.merge_anthropic_raw({}, start, final=False)
    seen = usage.merge_anthropic_raw(after_start, delta)

    assert usage.from_anthropic(after_start) == Usage(input_tokens=36, cache_read_tokens=5)
    assert usage.from_anthropic(seen) == Usage(36, 12, cache_read_tokens=5)


def test_gemini_output_adds_thoughts_which_gemini_counts_apart() -> None:
    raw = {
        "prompt_token_count": 1000,
        "cached_content_token_count": 600,
        "candidates_token_count": 500,
        "thoughts_token_count": 1500,
    }

    assert usage.from_gemini(raw) == Usage(1000, 2000, cache_read_tokens=600, reasoning_tokens=1500)


def test_gemini_intermediate_chunk_with_only_the_prompt_count_is_partial() -> None:
    record = usage.from_gemini({"prompt_token_count": 12})

    assert record == Usage(input_tokens=12)
    assert record.status == usage.PARTIAL


@pytest.mark.parametrize(
    "reader", [usage.from_openai_chat, usage.from_anthropic, usage.from_gemini]
)
def test_missing_usage_object_is_unavailable_not_zero(reader) -> None:
    record = reader(None)

    assert record.status == usage.UNAVAILABLE
    assert record.attributes() == {}


@pytest.mark.parametrize("value", [None, -1, "12", 1.5, float("nan"), True])
def test_counts_that_are_not_whole_non_negative_numbers_are_unknown(value) -> None:
    assert usage.count(value) is None


def test_whole_float_counts_from_gateways_are_accepted() -> None:
    assert usage.count(12.0) == 12


def test_cached_above_input_is_clamped_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    raw = {
        "prompt_tokens": 100,
        "completion_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 250},
    }

    with caplog.at_level(logging.WARNING, logger="otel_obs"):
        first = usage.from_openai_chat(raw)
        second = usage.from_openai_chat(raw)

    assert first == second == Usage(100, 10, cache_read_tokens=100)
    assert len([r for r in caplog.records if "more cached or reasoning" in r.getMessage()]) == 1


def test_reasoning_above_output_is_clamped() -> None:
    assert usage.usage(10, 5, reasoning=9) == Usage(10, 5, reasoning_tokens=5)


def test_merged_keeps_known_counts_and_takes_later_ones() -> None:
    early = Usage(input_tokens=12, cache_read_tokens=2)
    late = Usage(input_tokens=None, output_tokens=30)

    assert early.merged(late) == Usage(12, 30, cache_read_tokens=2)


def test_attributes_come_from_other_instrumentations_names() -> None:
    attributes = {
        "gen_ai.usage.prompt_tokens": 40,
        "gen_ai.usage.completion_tokens": 5,
        "gen_ai.usage.cache_write.input_tokens": 30,
    }

    assert usage.from_attributes(attributes) == Usage(40, 5, cache_write_tokens=30)
