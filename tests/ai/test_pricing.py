"""Prices and cost arithmetic: hand-computed USD, the resolution rule, the override file."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import genai_prices
import pytest

from otel_obs.ai import pricing
from otel_obs.ai.pricing import Pricer, PricesFileError, compute_cost, load_overrides
from otel_obs.ai.usage import Usage, from_anthropic, from_gemini

BUNDLED = Pricer()


def cost_of(
    model: str, provider: str | None, record: Usage, pricer: Pricer = BUNDLED, when=None
) -> Decimal:
    prices = pricer.resolve([model], provider, when)
    assert prices is not None, model
    cost = compute_cost(record, prices)
    assert cost is not None
    return cost.total


# --- exact values, worked out by hand from the published rates --------------------------


def test_gpt_4o_1000_in_500_out() -> None:
    # 1000 x $2.50/M + 500 x $10/M = 0.0025 + 0.005
    assert cost_of("gpt-4o", "openai", Usage(1000, 500)) == Decimal("0.0075")


def test_gpt_4o_with_400_of_the_input_cached() -> None:
    # 600 x $2.50/M + 400 x $1.25/M + 500 x $10/M = 0.0015 + 0.0005 + 0.005
    assert cost_of("gpt-4o", "openai", Usage(1000, 500, cache_read_tokens=400)) == Decimal("0.0070")


def test_claude_sonnet_4_5_cache_write_is_billed_once_at_the_write_rate() -> None:
    record = from_anthropic(
        {
            "input_tokens": 3,
            "cache_creation_input_tokens": 12304,
            "cache_read_input_tokens": 0,
            "output_tokens": 550,
        }
    )
    # 3 x $3/M + 12304 x $3.75/M + 550 x $15/M (double billing would give 0.091311)
    assert record.input_tokens == 12307
    assert cost_of("claude-sonnet-4-5", "anthropic", record) == Decimal("0.054399")


def test_claude_sonnet_4_5_cache_read_case() -> None:
    record = from_anthropic(
        {
            "input_tokens": 4,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 2455,
            "output_tokens": 23,
        }
    )
    # 4 x $3/M + 2455 x $0.30/M + 23 x $15/M = 0.000012 + 0.0007365 + 0.000345
    assert cost_of("claude-sonnet-4-5", "anthropic", record) == Decimal("0.0010935")


def test_cost_breakdown_adds_up_to_the_total() -> None:
    prices = BUNDLED.resolve(["claude-sonnet-4-5"], "anthropic")
    cost = compute_cost(Usage(12307, 550, cache_read_tokens=0, cache_write_tokens=12304), prices)

    assert (cost.input, cost.cache_read, cost.cache_write, cost.output) == (
        Decimal("0.000009"),
        Decimal(0),
        Decimal("0.04614"),
        Decimal("0.00825"),
    )


def test_gemini_2_5_pro_below_its_200k_tier() -> None:
    # 100,000 x $1.25/M + 1,000 x $10/M
    assert cost_of("gemini-2.5-pro", "gcp.gemini", Usage(100_000, 1_000)) == Decimal("0.135")


def test_gemini_2_5_pro_at_exactly_200k_stays_on_the_base_rate() -> None:
    # 200,000 x $1.25/M + 1,000 x $10/M
    assert cost_of("gemini-2.5-pro", "gcp.gemini", Usage(200_000, 1_000)) == Decimal("0.26")


def test_gemini_2_5_pro_above_its_200k_tier_applies_to_the_whole_call() -> None:
    # 250,000 x $2.50/M + 1,000 x $15/M
    assert cost_of("gemini-2.5-pro", "gcp.gemini", Usage(250_000, 1_000)) == Decimal("0.640")


def test_gemini_2_5_pro_tier_is_chosen_by_total_input_including_cache() -> None:
    # 50,000 x $2.50/M + 200,000 x $0.25/M + 1,000 x $15/M = 0.125 + 0.05 + 0.015
    record = Usage(250_000, 1_000, cache_read_tokens=200_000)
    assert cost_of("gemini-2.5-pro", "gcp.gemini", record) == Decimal("0.190")


def test_gemini_thoughts_are_billed_as_output() -> None:
    record = from_gemini(
        {"prompt_token_count": 1000, "candidates_token_count": 500, "thoughts_token_count": 1500}
    )
    # 1000 x $1.25/M + (500 + 1500) x $10/M = 0.00125 + 0.02
    assert cost_of("gemini-2.5-pro", "gcp.gemini", record) == Decimal("0.02125")


def test_openai_reasoning_tokens_are_part_of_output_and_billed_as_output() -> None:
    when = datetime(2025, 9, 1, tzinfo=timezone.utc)
    # o3 since 2025-06-10: 1000 x $2/M + 3000 (2500 of them reasoning) x $8/M
    assert cost_of("o3", "openai", Usage(1000, 3000, reasoning_tokens=2500), when=when) == Decimal(
        "0.026"
    )


def test_dated_prices_follow_the_call_date() -> None:
    before = datetime(2025, 6, 1, tzinfo=timezone.utc)
    # o3 before 2025-06-10: 1000 x $10/M + 1000 x $40/M
    assert cost_of("o3", "openai", Usage(1000, 1000), when=before) == Decimal("0.05")


@pytest.mark.parametrize(
    ("model", "provider", "record"),
    [
        (
            "gpt-4o",
            "openai",
            {"input_tokens": 1000, "output_tokens": 500, "cache_read_tokens": 400},
        ),
        (
            "claude-sonnet-4-5",
            "anthropic",
            {"input_tokens": 12307, "output_tokens": 550, "cache_write_tokens": 12304},
        ),
        (
            "claude-sonnet-4-5",
            "anthropic",
            {"input_tokens": 2459, "output_tokens": 23, "cache_read_tokens": 2455},
        ),
        (
            "gemini-2.5-pro",
            "google",
            {"input_tokens": 250_000, "output_tokens": 1_000, "cache_read_tokens": 200_000},
        ),
    ],
)
def test_our_arithmetic_agrees_with_genai_prices_own(
    model: str, provider: str, record: dict
) -> None:
    theirs = genai_prices.calc_price(
        genai_prices.Usage(**record), model, provider_id=provider
    ).total_price
    ours = cost_of(model, provider, Usage(**record))

    assert ours == theirs


def test_incomplete_usage_has_no_cost() -> None:
    prices = BUNDLED.resolve(["gpt-4o"], "openai")

    assert compute_cost(Usage(input_tokens=None, output_tokens=15), prices) is None
    assert compute_cost(Usage(input_tokens=10), prices) is None


# --- the resolution rule ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "provider", "resolved"),
    [
        ("gpt-4o-mini-2024-07-18", "openai", "gpt-4o-mini"),
        ("GPT-4o-Mini", "openai", "gpt-4o-mini"),
        ("  gpt-4o  ", "openai", "gpt-4o"),
        ("gpt-4o-2099-01-31", "openai", "gpt-4o"),
        ("gpt-4o-20990131", "openai", "gpt-4o"),
        ("claude-sonnet-4-5@20250929", "anthropic", "claude-sonnet-4-5"),
        ("models/gemini-2.5-pro", "gcp.gemini", "gemini-2.5-pro"),
        ("publishers/google/models/gemini-2.5-pro", "gcp.vertex_ai", "gemini-2.5-pro"),
        ("openai/gpt-4o", None, "gpt-4o"),
    ],
)
def test_snapshots_case_variants_and_prefixes_resolve_to_the_base_model(
    name, provider, resolved
) -> None:
    prices = BUNDLED.resolve([name], provider)

    assert prices is not None and prices.model == resolved


def test_a_dated_snapshot_with_its_own_price_keeps_it() -> None:
    # gpt-4o-2024-05-13 was billed at $5/$15, not gpt-4o's current $2.50/$10.
    prices = BUNDLED.resolve(["gpt-4o-2024-05-13"], "openai")

    assert (prices.input.base, prices.output.base) == (Decimal(5), Decimal(15))


@pytest.mark.parametrize(
    "name", ["acme-llm-9000", "", "   ", None, "ft:gpt-4o-mini-2024-07-18:acme::Bx12"]
)
def test_unknown_empty_missing_and_unmapped_fine_tunes_have_no_price(name) -> None:
    assert BUNDLED.resolve([name], "openai") is None


def test_response_model_is_tried_before_request_model() -> None:
    prices = BUNDLED.resolve(["gpt-4o-mini-2024-07-18", "gpt-4o"], "openai")

    assert prices.model == "gpt-4o-mini"


def test_unknown_response_model_falls_back_to_the_request_model() -> None:
    assert BUNDLED.resolve(["acme-router-v2", "gpt-4o"], "openai").model == "gpt-4o"


def test_bundled_source_names_the_genai_prices_version() -> None:
    prices = BUNDLED.resolve(["gpt-4o"], "openai")

    assert prices.source == f"genai-prices {genai_prices.__version__}"


# --- the override file ------------------------------------------------------------------

OVERRIDES = """
models:
  - match: "ft:gpt-4o-mini-2024-07-18:acme:*"
    provider: openai
    input: 0.30
    cached_input: 0.15
    output: 1.20
  - model: gpt-4o
    input: 2.00
    output: 8.00
    effective_from: 2030-01-01
  - model: gpt-4o
    input: 1.00
    output: 4.00
    effective_from: 2031-01-01
  - regex: "selfhosted-llama-.*"
    input: 0
    output: 0
  - match: "acme-big"
    input: 1
    output: 2
    tiers:
      - above: 100000
        input: 3
        output: 4
  - match: "ft:*"
    price_as: base
  - match: "my-gateway-model"
    price_as: claude-sonnet-4-5
"""


@pytest.fixture
def overrides(tmp_path: Path) -> Pricer:
    path = tmp_path / "prices.yaml"
    path.write_text(OVERRIDES)
    return Pricer(load_overrides(str(path)))


def test_fine_tune_priced_from_the_override_file(overrides: Pricer) -> None:
    record = Usage(1000, 500, cache_read_tokens=200)
    # 800 x $0.30/M + 200 x $0.15/M + 500 x $1.20/M = 0.00024 + 0.00003 + 0.0006
    assert cost_of("ft:gpt-4o-mini-2024-07-18:acme::Bx12", "openai", record, overrides) == Decimal(
        "0.00087"
    )


def test_override_source_names_the_file(overrides: Pricer) -> None:
    prices = overrides.resolve(["ft:gpt-4o-mini-2024-07-18:acme::Bx12"], "openai")

    assert prices.source == "override-file prices.yaml"


def test_override_provider_restricts_the_entry(overrides: Pricer) -> None:
    prices = overrides.resolve(["ft:gpt-4o-mini-2024-07-18:acme::Bx12"], "anthropic")

    # The acme entry is for openai only; the next pattern, ft:* price_as base, applies.
    assert prices.model == "gpt-4o-mini" and prices.source.startswith("genai-prices")


def test_overrides_win_from_their_effective_date(overrides: Pricer) -> None:
    def at(year: int) -> Decimal:
        return cost_of(
            "gpt-4o",
            "openai",
            Usage(1000, 1000),
            overrides,
            datetime(year, 6, 1, tzinfo=timezone.utc),
        )

    assert at(2029) == Decimal("0.0125")  # bundled: 1000 x 2.50 + 1000 x 10
    assert at(2030) == Decimal("0.010")  # override from 2030: 1000 x 2 + 1000 x 8
    assert at(2032) == Decimal("0.005")  # the later override from 2031: 1000 x 1 + 1000 x 4


def test_self_hosted_model_priced_at_zero_only_because_the_file_says_so(overrides: Pricer) -> None:
    assert cost_of("selfhosted-llama-70b", "vllm", Usage(5000, 500), overrides) == Decimal(0)


def test_override_tiers_apply_above_their_threshold(overrides: Pricer) -> None:
    assert cost_of("acme-big", None, Usage(100_000, 1000), overrides) == Decimal(
        "0.102"
    )  # 0.1 + 0.002
    assert cost_of("acme-big", None, Usage(100_001, 1000), overrides) == Decimal(
        "0.304003"
    )  # x3, x4


def test_price_as_another_model(overrides: Pricer) -> None:
    assert overrides.resolve(["my-gateway-model"], "openai").model == "claude-sonnet-4-5"


def test_json_override_file(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            [
                {
                    "model": "acme-llm-9000",
                    "input": "1.5",
                    "output": 6,
                    "effective_from": "2020-01-01",
                }
            ]
        )
    )

    # 1000 x $1.50/M + 200 x $6/M
    assert cost_of(
        "acme-llm-9000", "openai", Usage(1000, 200), Pricer(load_overrides(str(path)))
    ) == Decimal("0.0027")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("models: 3", "expected a list of models"),
        ("- {model: a, input: 1}", "models[0]: missing 'output'"),
        (
            "- {model: a, input: -1, output: 1}",
            "models[0].input: expected a finite price of 0 or more",
        ),
        ("- {model: a, input: .nan, output: 1}", "models[0].input: expected a finite price"),
        ("- {model: a, input: cheap, output: 1}", "models[0].input: expected a number"),
        ("- {input: 1, output: 1}", "give exactly one of match (glob), regex or model"),
        ("- {model: a, input: 1, output: 1, colour: red}", "unknown field(s) colour"),
        ("- {regex: '(', input: 1, output: 1}", "models[0].regex: not a valid regular expression"),
        (
            "- {model: a, input: 1, output: 1, effective_from: soon}",
            "effective_from: expected a date",
        ),
        (
            "- {model: a, input: 1, output: 1, tiers: [{input: 2}]}",
            "tiers[0]: expected a mapping with 'above'",
        ),
        ("models: [", "not valid YAML"),
    ],
)
def test_bad_override_files_say_what_is_wrong(tmp_path: Path, document: str, message: str) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(document)

    with pytest.raises(PricesFileError, match=None) as raised:
        load_overrides(str(path))

    assert message in str(raised.value)
    assert str(path) in str(raised.value)
    assert pricing.check_prices_file(str(path)) == [str(raised.value)]


def test_unusable_override_file_warns_once_and_keeps_bundled_prices(tmp_path: Path, caplog) -> None:
    path = tmp_path / "missing.yaml"

    pricer = Pricer.from_prices_file(str(path))
    Pricer.from_prices_file(str(path))

    assert pricer.resolve(["gpt-4o"], "openai").source.startswith("genai-prices")
    assert (
        len([r for r in caplog.records if "override prices file not used" in r.getMessage()]) == 1
    )


# --- `otel-obs prices` -----------------------------------------------------------------


def run_command(*argv: str) -> tuple[int, str]:
    import contextlib
    import io

    parser = argparse.ArgumentParser()
    pricing.add_prices_arguments(parser)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = pricing.run_prices(parser.parse_args(list(argv)))
    return code, out.getvalue()


def test_prices_command_prints_rates_and_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pricing.PRICES_FILE_ENV, raising=False)

    code, out = run_command("gpt-4o-2024-08-06", "--provider", "openai")

    assert code == 0
    assert "model:    gpt-4o  (asked for 'gpt-4o-2024-08-06')" in out
    assert f"source:   genai-prices {genai_prices.__version__}" in out
    assert "  input         2.5\n" in out
    assert "  cached input  1.25\n" in out
    assert "  cache write   billed as input\n" in out
    assert "  output        10\n" in out


def test_prices_command_shows_tiers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pricing.PRICES_FILE_ENV, raising=False)

    code, out = run_command("gemini-2.5-pro", "--provider", "gcp.gemini")

    assert code == 0
    assert "  input         1.25; above 200,000 input tokens: 2.5\n" in out


def test_prices_command_uses_the_override_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(OVERRIDES)
    monkeypatch.setenv(pricing.PRICES_FILE_ENV, str(path))

    code, out = run_command("ft:gpt-4o-mini-2024-07-18:acme::Bx12", "--provider", "openai")

    assert code == 0
    assert "source:   override-file prices.yaml" in out
    assert "  output        1.2" in out


def test_prices_command_exits_1_for_an_unknown_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pricing.PRICES_FILE_ENV, raising=False)

    code, out = run_command("acme-llm-9000")

    assert code == 1
    assert "no price for 'acme-llm-9000'" in out


def test_prices_command_through_the_cli_dispatcher(
    capsys: pytest.CaptureFixture, monkeypatch
) -> None:
    from otel_obs.cli import main

    monkeypatch.delenv(pricing.PRICES_FILE_ENV, raising=False)

    assert main(["prices", "claude-sonnet-4-5", "--provider", "anthropic"]) == 0
    assert "  cache write   3.75; above 200,000 input tokens: 7.5" in capsys.readouterr().out
