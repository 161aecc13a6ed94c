"""AI costs: what LLM calls cost, where the money goes, tokens, caching, latency and errors."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.common import (
    TRACES_OF_SERVICE,
    about,
    add_rows,
    graph,
    increase_sum,
    links,
    new_dashboard,
    per_hour,
    quantile,
    ranking,
    rate_sum,
    ratio,
    single,
    target,
    trace_table,
)

UID = "otel-obs-ai-costs"
COST = "gen_ai_client_cost_USD_total"
SAVED = "gen_ai_client_cost_saved_USD_total"
TOKENS = "gen_ai_client_token_usage_sum"
CACHE_TOKENS = "gen_ai_client_cache_tokens_total"
DURATION = "gen_ai_client_operation_duration_seconds"
CALLS = f"{DURATION}_count"
ERRORS = "gen_ai_client_errors_total"
UNPRICED = "gen_ai_client_unpriced_calls_total"

MODEL = ("gen_ai_provider_name", "gen_ai_request_model")
MODEL_LEGEND = "{{gen_ai_provider_name}} {{gen_ai_request_model}}"
GENAI_SPANS = "span.gen_ai.operation.name != nil"
MODEL_SPANS = (
    f'{GENAI_SPANS} && span.gen_ai.request.model="${{__field.labels.gen_ai_request_model}}"'
)
USD_PER_HOUR = "currencyUSD"

ABOUT = """\
**What do LLM calls cost, and why?** Spend over the last 24 hours and per hour, split by
provider, model, service and operation; tokens by type; how much prompt caching saves;
LLM latency and errors; the most expensive operations; and calls to models with no known
price, whose cost is missing from every figure here. Costs are computed by otel-obs from
token usage at the prices of `genai-prices` (or your override file).
"""


def _cache_hit_ratio(labels: tuple[str, ...] = ()) -> str:
    return ratio(
        rate_sum(CACHE_TOKENS, labels, 'otel_obs_cache_operation="read"'),
        rate_sum(TOKENS, labels, 'gen_ai_token_type="input"'),
    )


def overview() -> list[object]:
    genai_links = links(GENAI_SPANS)
    return [
        about(ABOUT),
        single(
            "Spend, last 24 h",
            "US dollars spent on priced LLM calls in the last 24 hours.",
            "currencyUSD",
            increase_sum(COST, window="24h"),
            genai_links,
        ),
        single(
            "Spend rate",
            "Current spend in US dollars per hour.",
            USD_PER_HOUR,
            per_hour(rate_sum(COST)),
            genai_links,
        ),
        single(
            "Saved by prompt caching, 24 h",
            "US dollars that cache reads saved against the uncached input price, last 24 hours.",
            "currencyUSD",
            increase_sum(SAVED, window="24h"),
            genai_links,
        ),
        single(
            "Cache hit ratio",
            "Share of input tokens read from the provider's prompt cache.",
            "percentunit",
            _cache_hit_ratio(),
            genai_links,
        ),
        single(
            "LLM error ratio",
            "Share of LLM calls that failed.",
            "percentunit",
            ratio(rate_sum(ERRORS), rate_sum(CALLS)),
            links(f"{GENAI_SPANS} && status = error"),
        ),
        single(
            "Unpriced calls, 24 h",
            "Calls to models with no known price in the last 24 hours: their cost is not counted.",
            "short",
            f"{increase_sum(UNPRICED, window='24h')} or vector(0)",
            links(f"{GENAI_SPANS} && span.otel_obs.cost.status != nil"),
        ),
    ]


def spend() -> list[object]:
    return [
        graph(
            "Spend per hour by provider",
            "US dollars spent in each hour, by provider.",
            "currencyUSD",
            [
                target(
                    increase_sum(COST, ("gen_ai_provider_name",), window="1h"),
                    "{{gen_ai_provider_name}}",
                )
            ],
            links(GENAI_SPANS),
            bars=True,
            stacked=True,
            interval="1h",
        ),
        graph(
            "Spend rate by model",
            "US dollars per hour, by provider and requested model.",
            USD_PER_HOUR,
            [target(per_hour(rate_sum(COST, MODEL)), MODEL_LEGEND)],
            links(MODEL_SPANS),
            stacked=True,
        ),
        graph(
            "Spend rate by service",
            "US dollars per hour, by the service that made the calls.",
            USD_PER_HOUR,
            [target(per_hour(rate_sum(COST, ("service_name",))), "{{service_name}}")],
            links(GENAI_SPANS),
            stacked=True,
        ),
        graph(
            "Spend rate by operation",
            "US dollars per hour, by GenAI operation (chat, embeddings, ...).",
            USD_PER_HOUR,
            [
                target(
                    per_hour(rate_sum(COST, ("gen_ai_operation_name",))),
                    "{{gen_ai_operation_name}}",
                )
            ],
            links(GENAI_SPANS),
            stacked=True,
        ),
        ranking(
            "Most expensive operations over the time range",
            "The ten service, operation and model combinations that cost the most in the range.",
            "currencyUSD",
            "topk(10, "
            + increase_sum(
                COST, ("service_name", "gen_ai_operation_name", *MODEL), window="$__range"
            )
            + ")",
            links(MODEL_SPANS),
            width=24,
        ),
    ]


def tokens_and_caching() -> list[object]:
    return [
        graph(
            "Tokens per second by type",
            "Input and output tokens per second (input includes cached tokens).",
            "short",
            [target(rate_sum(TOKENS, ("gen_ai_token_type",)), "{{gen_ai_token_type}}")],
            links(GENAI_SPANS),
        ),
        graph(
            "Tokens per second by model",
            "Tokens per second by model and token type.",
            "short",
            [
                target(
                    rate_sum(TOKENS, (*MODEL, "gen_ai_token_type")),
                    MODEL_LEGEND + " {{gen_ai_token_type}}",
                )
            ],
            links(MODEL_SPANS),
        ),
        graph(
            "Cache hit ratio by model",
            "Share of each model's input tokens read from the prompt cache.",
            "percentunit",
            [target(_cache_hit_ratio(MODEL), MODEL_LEGEND)],
            links(MODEL_SPANS),
        ),
        graph(
            "Saved by prompt caching",
            "US dollars per hour that cache reads saved, by model.",
            USD_PER_HOUR,
            [target(per_hour(rate_sum(SAVED, MODEL)), MODEL_LEGEND)],
            links(MODEL_SPANS),
        ),
    ]


def latency_and_errors() -> list[object]:
    model_errors = f"{MODEL_SPANS} && status = error"
    return [
        graph(
            "LLM call latency p95 by model",
            "95th percentile of LLM call duration (streams: to the last chunk); dots: exemplars.",
            "s",
            [target(quantile(0.95, DURATION, MODEL), MODEL_LEGEND, exemplar=True)],
            links(MODEL_SPANS),
        ),
        graph(
            "LLM call latency p50 / p99",
            "Median and 99th percentile of LLM call duration over all models.",
            "s",
            [
                target(quantile(0.5, DURATION), "p50", exemplar=True),
                target(quantile(0.99, DURATION), "p99", exemplar=True),
            ],
            links(GENAI_SPANS),
        ),
        graph(
            "LLM errors by type",
            "Failed LLM calls per second by provider, model and error type.",
            "reqps",
            [target(rate_sum(ERRORS, (*MODEL, "error_type")), MODEL_LEGEND + " {{error_type}}")],
            links(model_errors, 'severity_text=~"ERROR|WARN.*"'),
        ),
        graph(
            "LLM error ratio by provider",
            "Share of each provider's calls that failed.",
            "percentunit",
            [
                target(
                    ratio(
                        rate_sum(ERRORS, ("gen_ai_provider_name",)),
                        rate_sum(CALLS, ("gen_ai_provider_name",)),
                    ),
                    "{{gen_ai_provider_name}}",
                )
            ],
            links(f"{GENAI_SPANS} && status = error"),
        ),
        ranking(
            "Calls to unpriced models",
            "Calls in the range to models with no known price; add them to the prices override.",
            "short",
            increase_sum(
                UNPRICED, ("service_name", *MODEL, "otel_obs_cost_status"), window="$__range"
            ),
            links(MODEL_SPANS),
        ),
        trace_table(
            "Failed LLM calls",
            "Recent GenAI client spans of the chosen services that ended in error.",
            "{" + TRACES_OF_SERVICE + f" && {GENAI_SPANS} && status = error}}",
        ),
    ]


def build() -> db.Dashboard:
    dashboard = new_dashboard(
        "otel-obs / AI costs",
        UID,
        "Spend, tokens, caching, latency and errors of LLM calls.",
        ["ai", "genai", "cost"],
    )
    return add_rows(
        dashboard,
        [
            ("Overview", overview()),
            ("Spend", spend()),
            ("Tokens and caching", tokens_and_caching()),
            ("Latency and errors", latency_and_errors()),
        ],
    )
