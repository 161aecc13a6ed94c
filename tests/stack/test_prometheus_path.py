"""SDK -> otelcol-obs -> Prometheus with real processes: names and values as PromQL sees them."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from .catalog import CATALOG
from .conftest import run_emitter

pytestmark = pytest.mark.real

DOUBLED_SUFFIX = re.compile(r"_(seconds|total|bytes|ratio|USD|milliseconds)_\1(_|$)")


def test_every_metric_is_stored_under_the_documented_name(stack, prometheus):
    run_emitter("catalog", "--endpoint", stack.urls["otlp_http"], "--service", "names-probe")
    # target_info carries the resource attributes that are not labels.
    expected = {name for metric in CATALOG for name in metric.series} | {"target_info"}

    prometheus.wait_for('count(count by (__name__) ({job="names-probe"}))', float(len(expected)))
    stored = {row["metric"]["__name__"] for row in prometheus.query('{job="names-probe"}')}

    assert stored == expected


def test_no_stored_metric_name_has_a_doubled_suffix(stack, prometheus):
    run_emitter("catalog", "--endpoint", stack.urls["otlp_http"], "--service", "suffix-probe")
    prometheus.wait_for('count({job="suffix-probe"})')

    doubled = [name for name in prometheus.names() if DOUBLED_SUFFIX.search(name)]

    assert doubled == []


def test_request_counts_and_ai_cost_equal_what_was_sent(stack, prometheus):
    # Prices of gpt-4o-mini per million tokens (input 0.15 USD, output 0.60 USD) applied
    # to three calls; the expected total is computed exactly, apart from the SDK.
    calls = [(1532, 211), (880, 1024), (12000, 7)]
    costs = [
        Decimal(tokens_in) * Decimal("0.15") / 10**6 + Decimal(tokens_out) * Decimal("0.60") / 10**6
        for tokens_in, tokens_out in calls
    ]
    args = ["traffic", "--endpoint", stack.urls["otlp_http"], "--service", "traffic-probe"]
    args += ["--ok", "7", "--errors", "3"]
    for cost in costs:
        args += ["--cost", str(cost)]
    sent = run_emitter(*args)
    assert sent["statuses"] == {"200": 7, "500": 3}

    requests = 'http_server_request_duration_seconds_count{job="traffic-probe",%s}'
    ok = prometheus.wait_for(
        requests % 'http_route="/items/{item_id}",http_response_status_code="200"', 7.0
    )
    failed = prometheus.wait_for(
        requests % 'http_route="/fail",http_response_status_code="500"', 3.0
    )
    total = prometheus.wait_for("sum(%s)" % (requests % 'http_request_method="GET"'), 10.0)
    cost = prometheus.wait_for('sum(gen_ai_client_cost_USD_total{job="traffic-probe"})')

    assert (ok, failed, total) == (7.0, 3.0, 10.0)
    assert abs(cost - float(sum(costs))) <= 1e-9


def test_ai_cost_priced_by_otel_obs_reaches_prometheus_exactly(
    stack, prometheus, tmp_path, monkeypatch
):
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "models:\n"
        "  - model: stack-test-model\n"
        "    input: 1.25\n"
        "    cached_input: 0.125\n"
        "    output: 10.0\n"
    )
    monkeypatch.setenv("OTEL_OBS_PRICES_FILE", str(prices))
    calls = [(1532, 211, 0), (4000, 1024, 3000), (12000, 7, 11000)]
    # USD per million tokens: uncached input at 1.25, cache reads at 0.125, output at 10.
    expected = sum(
        (Decimal(i - c) * Decimal("1.25") + Decimal(c) * Decimal("0.125") + Decimal(o) * 10) / 10**6
        for i, o, c in calls
    )
    args = ["ai", "--endpoint", stack.urls["otlp_http"], "--service", "ai-probe"]
    for i, o, c in calls:
        args += ["--call", f"{i},{o},{c}"]

    sent = run_emitter(*args)
    cost = prometheus.wait_for('sum(gen_ai_client_cost_USD_total{job="ai-probe"})')
    tokens = prometheus.wait_for('sum(gen_ai_client_token_usage_sum{job="ai-probe"})')
    names = {row["metric"]["__name__"] for row in prometheus.query('{job="ai-probe"}')}

    assert sum(Decimal(c) for c in sent["costs"]) == expected
    assert cost is not None and abs(cost - float(expected)) <= 1e-9
    assert tokens == float(sum(i + o for i, o, _ in calls))
    documented = {name for metric in CATALOG for name in metric.series} | {"target_info"}
    assert names <= documented, names - documented


def test_collector_reports_its_own_throughput(stack, prometheus):
    run_emitter("catalog", "--endpoint", stack.urls["otlp_http"], "--service", "self-probe")

    accepted = prometheus.wait_for(
        'sum(otelcol_receiver_accepted_metric_points{job="otelcol-self"}) > 0'
    )
    refused = prometheus.value('sum(otelcol_receiver_refused_metric_points{job="otelcol-self"})')

    assert accepted is not None and accepted >= len(CATALOG)
    assert refused == 0.0
