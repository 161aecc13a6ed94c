"""`otel-obs demo --json` end to end without a stack: real uvicorn, Celery, Redis and LLM server.

One short run is shared by the tests below; each checks one promise of the summary against
what the workload itself sent, or one part of the summary against another.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from demo_support import kind_count, run_demo, status_counts

from otel_obs.demo import render

pytestmark = pytest.mark.real

SERVER, CLIENT, PRODUCER, CONSUMER = "server", "client", "producer", "consumer"


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # An empty stack directory, and --no-stack, so that nothing is forwarded anywhere. The
    # broker is kombu's filesystem transport here, the fallback; the stack test uses Redis.
    stack_dir = tmp_path_factory.mktemp("no-stack")
    arguments = ("--duration", "8", "--no-stack", "--broker", "filesystem")
    result, _ = run_demo(*arguments, env={"OTEL_OBS_STACK_DIR": str(stack_dir)})
    return result


def test_summary_has_every_section(summary: dict[str, Any]) -> None:
    assert set(summary) >= {
        "demo",
        "trace",
        "http",
        "llm",
        "business",
        "logs",
        "masking",
        "queries",
        "received",
    }
    assert summary["demo"]["telemetry"]["forwarded_to"] is None
    assert summary["demo"]["broker"]["kind"] == "filesystem"
    assert summary["received"]["services"] == ["adplatform-api", "adplatform-worker"]


def test_trace_runs_from_the_request_through_celery_to_the_llm_calls(
    summary: dict[str, Any],
) -> None:
    nodes = summary["trace"]["spans"]
    by_id = {n["span_id"]: n for n in nodes}

    root = nodes[0]
    assert (root["kind"], root["service"], root["depth"]) == (SERVER, "adplatform-api", 0)
    assert root["attributes"]["http.route"] == "/campaigns/{campaign_id}/videos"

    publish = [n for n in nodes if n["kind"] == PRODUCER]
    run = [n for n in nodes if n["kind"] == CONSUMER]
    llm = [n for n in nodes if "gen_ai.provider.name" in n["attributes"]]
    assert len(publish) == 1 and len(run) == 1 and len(llm) >= 2

    # Parents: the publish inside the request, the run under the publish, the calls under the run.
    assert _ancestor_ids(publish[0], by_id)[-1] == root["span_id"]
    assert run[0]["parent_span_id"] == publish[0]["span_id"]
    assert run[0]["service"] == "adplatform-worker"
    for call in llm:
        assert run[0]["span_id"] in _ancestor_ids(call, by_id)
        assert call["kind"] == CLIENT and call["service"] == "adplatform-worker"
        assert call["attributes"]["gen_ai.usage.cost"] > 0
    # A child starts no earlier than its parent.
    for node in nodes[1:]:
        assert node["start_offset_ms"] >= by_id[node["parent_span_id"]]["start_offset_ms"]


def _ancestor_ids(node: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    while node["parent_span_id"] in by_id:
        out.append(node["parent_span_id"])
        node = by_id[node["parent_span_id"]]
    return out


def test_route_figures_add_up_and_match_what_the_workload_received(summary: dict[str, Any]) -> None:
    http = summary["http"]
    rows, total = http["routes"], http["total"]
    workload = summary["demo"]["workload"]

    assert total["requests"] == sum(r["requests"] for r in rows)
    assert total["errors_5xx"] == sum(r["errors_5xx"] for r in rows)
    assert total["requests"] == workload["requests"] - workload["transport_errors"]
    assert http["status_codes"] == status_counts(summary)
    for row in rows:
        assert row["p50_s"] <= row["p95_s"] <= row["p99_s"]
        assert row["rate_per_s"] == pytest.approx(row["requests"] / workload["seconds"], rel=1e-3)
    routes = {r["route"]: r for r in rows}
    # The bad date raises in the route: every one of those requests is a 5xx.
    assert routes["/reports/daily"]["errors_5xx"] == kind_count(
        summary, "daily report (bad date)", "500"
    )
    assert "/health" not in routes


def test_llm_totals_are_the_sums_per_model_and_agree_with_the_spans(
    summary: dict[str, Any],
) -> None:
    llm = summary["llm"]
    models, total = llm["models"], llm["total"]

    assert {m["provider"] for m in models} == {"openai", "anthropic", "gcp.gemini"}
    for field in (
        "calls",
        "errors",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
    ):
        assert total[field] == sum(m[field] for m in models), field
    assert total["cost_usd"] > 0
    assert math.isclose(total["cost_usd"], sum(m["cost_usd"] for m in models), abs_tol=1e-12)
    # Every call made one span and one duration point; its cost is on both.
    assert llm["spans"] == total["calls"]
    assert math.isclose(llm["priced_spans_cost_usd"], total["cost_usd"], abs_tol=1e-9)
    # Prompt caching: writes on the first Anthropic call, reads afterwards, money saved.
    assert total["cache_write_tokens"] > 0 and total["cache_read_tokens"] > 0
    assert total["saved_by_cache_usd"] > 0
    # The 429 and 500 the LLM server was asked for are counted as LLM errors.
    failed = kind_count(summary, "ad copy: LLM answers 429", "503") + kind_count(
        summary, "ad copy: LLM answers 500", "502"
    )
    assert total["errors"] == failed


def test_business_kpis_match_the_requests_that_made_them(summary: dict[str, Any]) -> None:
    business = summary["business"]

    assert sum(business["campaigns_created"].values()) == kind_count(
        summary, "create campaign", "201"
    )
    assert business["predictions"] == kind_count(summary, "predict ROAS", "200")
    videos = business["video_generations"]
    finished = summary["demo"]["tasks"]["finished"]
    assert sum(videos.values()) == finished == summary["demo"]["tasks"]["enqueued"]
    assert videos.get("failed", 0) == kind_count(summary, "generate video (fails)", "202")
    assert business["roas"] == pytest.approx(business["revenue_usd"] / business["ad_spend_usd"])
    assert business["prediction_mae"] > 0


def test_logs_of_the_trace_are_masked(summary: dict[str, Any]) -> None:
    logs = summary["logs"]
    text = "\n".join(record["message"] for record in logs)

    assert logs, "the trace has no log records"
    assert {record["service"] for record in logs} == {"adplatform-api", "adplatform-worker"}
    assert "[REDACTED:email]" in text
    assert "@example." not in text
    masking = summary["masking"]
    assert masking["values_checked"] > 0 and masking["leaked"] == 0
    assert {"email", "phone", "card"} <= set(masking["markers"])


def test_queries_name_the_printed_trace(summary: dict[str, Any]) -> None:
    trace_id = summary["trace"]["trace_id"]
    queries = summary["queries"]

    assert trace_id in queries["traceql"]["this_trace"]
    assert trace_id in queries["logql"]["this_trace"]
    assert "gen_ai_client_cost_USD_total" in queries["promql"]["cost_usd_total"]


def test_text_summary_shows_each_section(summary: dict[str, Any]) -> None:
    text = render.text(summary)

    assert summary["trace"]["trace_id"] in text
    for row in summary["http"]["routes"]:
        assert f"{row['method']} {row['route']}" in text
    for row in summary["llm"]["models"]:
        assert f"{row['provider']}/{row['model']}" in text
    for heading in (
        "Routes of adplatform-api",
        "LLM calls",
        "Business KPIs",
        "Log lines of that trace",
    ):
        assert heading in text
