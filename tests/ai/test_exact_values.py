"""The hand-computed costs, end to end: real clients, span attributes and metric points."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from ai_support import TOLERANCE, Sdk, gemini_config, llm_headers, usd

from otel_obs import semconv

MESSAGES = [{"role": "user", "content": "hello"}]


def assert_cost(sdk: Sdk, expected: str, *, provider: str) -> None:
    """The one span and the cost counter both hold ``expected`` USD."""
    span = sdk.span()
    assert span.attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(usd(expected), abs=TOLERANCE)
    counted = sdk.total(semconv.METRIC_GEN_AI_COST, **{"gen_ai.provider.name": provider})
    assert counted == pytest.approx(usd(expected), abs=TOLERANCE)


def tokens(sdk: Sdk, token_type: str) -> float:
    return sdk.total(semconv.METRIC_GEN_AI_TOKEN_USAGE, **{"gen_ai.token.type": token_type})


def test_gpt_4o_1000_in_500_out_costs_0_0075(sdk: Sdk, openai_client) -> None:
    openai_client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        extra_headers=llm_headers(x_llm_usage="input=1000,output=500"),
    )

    assert_cost(sdk, "0.0075", provider="openai")
    assert (tokens(sdk, "input"), tokens(sdk, "output")) == (1000, 500)


def test_gpt_4o_with_400_cached_costs_0_0070_and_saves_0_0005(sdk: Sdk, openai_client) -> None:
    openai_client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        extra_headers=llm_headers(x_llm_usage="input=1000,output=500,cached=400"),
    )

    assert_cost(sdk, "0.0070", provider="openai")
    assert tokens(sdk, "input") == 1000  # cached tokens are part of the input
    # 400 x ($2.50 - $1.25) per million
    assert sdk.total(semconv.METRIC_GEN_AI_COST_SAVED) == pytest.approx(
        usd("0.0005"), abs=TOLERANCE
    )


def test_claude_sonnet_4_5_cache_write_costs_0_054399_with_12307_input(
    sdk: Sdk, anthropic_client
) -> None:
    anthropic_client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=64,
        messages=MESSAGES,
        extra_headers=llm_headers(x_llm_usage="input=3,cache_write=12304,cached=0,output=550"),
    )

    assert_cost(sdk, "0.054399", provider="anthropic")
    assert sdk.span().attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 12307
    assert tokens(sdk, "input") == 12307


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ("input=100000,output=1000", "0.135"),  # 100,000 x 1.25 + 1,000 x 10 (per million)
        ("input=250000,output=1000", "0.640"),  # 250,000 x 2.50 + 1,000 x 15
    ],
    ids=["below-200k", "above-200k"],
)
def test_gemini_2_5_pro_around_its_tier(sdk: Sdk, gemini_client, usage: str, expected: str) -> None:
    gemini_client.models.generate_content(
        model="gemini-2.5-pro", contents="hello", config=gemini_config(x_llm_usage=usage)
    )

    assert_cost(sdk, expected, provider="gcp.gemini")


def test_reasoning_tokens_are_billed_as_output(sdk: Sdk, openai_client) -> None:
    openai_client.chat.completions.create(
        model="o3",
        messages=MESSAGES,
        extra_headers=llm_headers(x_llm_usage="input=1000,output=3000,reasoning=2500"),
    )

    # o3: 1000 x $2/M + 3000 (2500 of them reasoning) x $8/M
    assert_cost(sdk, "0.026", provider="openai")
    assert sdk.span().attributes[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 2500


def test_fine_tuned_model_priced_from_the_override_file(
    make_sdk, openai_client, tmp_path: Path
) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(
        "models:\n"
        "  - match: 'ft:gpt-4o-mini-2024-07-18:acme:*'\n"
        "    input: 0.30\n"
        "    cached_input: 0.15\n"
        "    output: 1.20\n"
    )
    sdk = make_sdk(prices_file=str(path))

    openai_client.chat.completions.create(
        model="ft:gpt-4o-mini-2024-07-18:acme::Bx12",
        messages=MESSAGES,
        extra_headers=llm_headers(x_llm_usage="input=1000,output=500,cached=200"),
    )

    # 800 x $0.30/M + 200 x $0.15/M + 500 x $1.20/M
    assert_cost(sdk, "0.00087", provider="openai")
    assert sdk.span().attributes[semconv.OTEL_OBS_COST_SOURCE] == "override-file prices.yaml"


def test_cached_above_input_is_clamped_with_one_warning(sdk: Sdk, openai_client, caplog) -> None:
    headers = llm_headers(x_llm_usage="input=100,output=10,cached=250")

    with caplog.at_level(logging.WARNING, logger="otel_obs"):
        for _ in range(2):
            openai_client.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, extra_headers=headers
            )

    warnings = [r for r in caplog.records if "more cached or reasoning tokens" in r.getMessage()]
    assert len(warnings) == 1
    spans = sdk.spans()
    assert [s.attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] for s in spans] == [100, 100]
    # all 100 input tokens at the cached rate: 100 x $1.25/M + 10 x $10/M
    assert [s.attributes[semconv.GEN_AI_USAGE_COST] for s in spans] == pytest.approx(
        [usd("0.000225")] * 2, abs=TOLERANCE
    )
