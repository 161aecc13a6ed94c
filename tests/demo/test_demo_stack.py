"""`otel-obs demo` against the native stack: its summary checked against what the backends hold.

The stack (otelcol-obs, Prometheus, Alertmanager) runs on free ports in a temporary
directory; the demo finds it through ``OTEL_OBS_STACK_DIR`` and its receiver forwards every
export to the Collector. Prometheus must then hold the same request counts, percentiles and
AI cost as the summary; the Collector's file export must hold the printed trace and its logs.
"""

from __future__ import annotations

import base64
import json
import math
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from demo_support import run_demo

pytestmark = pytest.mark.real

SETTLE_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from otel_obs.stack import Ports, Stack, collector_binary

    if collector_binary() is None:
        pytest.skip(
            "otelcol-obs is not built (run collector/build.sh): "
            "the demo was not checked against a stack"
        )
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed: the demo was not checked against a stack")
    stack = Stack(tmp_path_factory.mktemp("stack"), Ports.free(), scrape_interval="1s")
    stack.up()
    try:
        yield stack
    finally:
        stack.down()


@pytest.fixture(scope="module")
def summary(stack: Any) -> dict[str, Any]:
    result, _ = run_demo("--duration", "8", env={"OTEL_OBS_STACK_DIR": str(stack.directory)})
    return result


def promql(stack: Any, query: str) -> list[dict[str, Any]]:
    url = f"{stack.urls['prometheus']}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


def settled(read: Callable[[], Any], expected: Any, same: Callable[[Any, Any], bool]) -> Any:
    """Poll ``read()`` until it matches ``expected`` (scrapes lag the demo's last export)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    value = read()
    while not same(value, expected) and time.monotonic() < deadline:
        time.sleep(0.5)
        value = read()
    return value


def test_demo_forwarded_everything_to_the_stack_collector(
    stack: Any, summary: dict[str, Any]
) -> None:
    telemetry = summary["demo"]["telemetry"]

    assert telemetry["forwarded_to"] == stack.urls["otlp_http"]
    # A failure here means the Collector refused an export the demo's processes sent, e.g.
    # with 400 for a request whose bytes were mixed with another one on a shared connection.
    assert telemetry["forward_failures"] == 0, "the Collector refused an export; see the worker log"
    expected_broker = "redis" if shutil.which("redis-server") else "filesystem"
    assert summary["demo"]["broker"]["kind"] == expected_broker


def test_cost_total_in_prometheus_equals_the_summary(stack: Any, summary: dict[str, Any]) -> None:
    expected = summary["llm"]["total"]["cost_usd"]

    def read() -> float:
        result = promql(stack, "sum(gen_ai_client_cost_USD_total)")
        return float(result[0]["value"][1]) if result else math.nan

    held = settled(read, expected, lambda a, b: abs(a - b) <= 1e-9)
    assert expected > 0
    assert abs(held - expected) <= 1e-9, (held, expected)

    per_model = {
        r["metric"]["gen_ai_request_model"]: float(r["value"][1])
        for r in promql(stack, "sum by (gen_ai_request_model) (gen_ai_client_cost_USD_total)")
    }
    for row in summary["llm"]["models"]:
        assert abs(per_model[row["model"]] - row["cost_usd"]) <= 1e-9, row["model"]


def test_request_counts_per_route_in_prometheus_equal_the_summary(
    stack: Any, summary: dict[str, Any]
) -> None:
    expected = {(r["method"], r["route"]): r["requests"] for r in summary["http"]["routes"]}
    query = (
        "sum by (http_request_method, http_route) "
        '(http_server_request_duration_seconds_count{service_name="adplatform-api"})'
    )

    def read() -> dict[tuple[str, str], int]:
        return {
            (r["metric"].get("http_request_method", ""), r["metric"].get("http_route", "")): int(
                float(r["value"][1])
            )
            for r in promql(stack, query)
        }

    held = settled(read, expected, lambda a, b: a == b)
    assert held == expected


def test_p95_per_route_equals_histogram_quantile_in_prometheus(
    stack: Any, summary: dict[str, Any]
) -> None:
    # Over the raw cumulative buckets (the whole run), like the summary; the demo's processes
    # started from zero, so this is the same as an increase() over the run.
    query = (
        "histogram_quantile(0.95, sum by (le, http_request_method, http_route) "
        '(http_server_request_duration_seconds_bucket{service_name="adplatform-api"}))'
    )
    expected = {(r["method"], r["route"]): r["p95_s"] for r in summary["http"]["routes"]}

    def read() -> dict[tuple[str, str], float]:
        return {
            (r["metric"]["http_request_method"], r["metric"]["http_route"]): float(r["value"][1])
            for r in promql(stack, query)
        }

    def same(a: dict[Any, float], b: dict[Any, float]) -> bool:
        return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-9) for k in b)

    held = settled(read, expected, same)
    assert held.keys() == expected.keys()
    for route, value in expected.items():
        assert math.isclose(held[route], value, rel_tol=1e-9), (route, held[route], value)


def _export_records(
    path: Path, resource_key: str, scope_key: str, record_key: str
) -> list[dict[str, Any]]:
    """Records of an OTLP/JSON lines file that the Collector's file exporter wrote."""
    records = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        for resource in json.loads(line).get(resource_key, []):
            for scope in resource.get(scope_key, []):
                records.extend(scope.get(record_key, []))
    return records


def test_printed_trace_is_in_the_collector_file_export(stack: Any, summary: dict[str, Any]) -> None:
    trace_id = summary["trace"]["trace_id"]
    printed = {(n["span_id"], n["parent_span_id"], n["name"]) for n in summary["trace"]["spans"]}
    path = stack.export_dir / "traces.jsonl"

    def read() -> set[tuple[str, str, str]]:
        if not path.exists():
            return set()
        spans = _export_records(path, "resourceSpans", "scopeSpans", "spans")
        return {
            (s["spanId"], s.get("parentSpanId", ""), s["name"])
            for s in spans
            if s["traceId"] == trace_id
        }

    held = settled(read, printed, lambda a, b: a == b)
    assert held == printed


def test_logs_of_the_trace_are_in_the_collector_file_export_masked(
    stack: Any, summary: dict[str, Any]
) -> None:
    trace_id = summary["trace"]["trace_id"]
    printed = sorted(record["message"] for record in summary["logs"])
    path = stack.export_dir / "logs.jsonl"

    def read() -> list[str]:
        if not path.exists():
            return []
        records = _export_records(path, "resourceLogs", "scopeLogs", "logRecords")
        return sorted(
            r["body"].get("stringValue", "") for r in records if r.get("traceId") == trace_id
        )

    held = settled(read, printed, lambda a, b: a == b)
    assert held == printed
    assert "[REDACTED:email]" in "\n".join(held)
    assert "@example." not in "\n".join(held)


def test_printed_trace_can_be_fetched_from_tempo(stack: Any, summary: dict[str, Any]) -> None:
    tempo = {s.name: s for s in stack.status()}.get("tempo")
    if tempo is None or tempo.state != "running" or not tempo.url:
        reason = tempo.reason if tempo is not None else "the native stack has no Tempo"
        pytest.skip(f"did not run: Tempo does not run in this stack ({reason})")
    trace_id = summary["trace"]["trace_id"]
    printed = {n["span_id"] for n in summary["trace"]["spans"]}

    def read() -> set[str]:
        try:
            with urllib.request.urlopen(
                f"{tempo.url}/api/v2/traces/{trace_id}", timeout=5
            ) as response:
                body = json.load(response)
        except OSError:
            return set()
        batches = body.get("trace", body).get("resourceSpans") or body.get("batches") or []
        return {
            _hex_id(span["spanId"])
            for batch in batches
            for scope in batch.get("scopeSpans", [])
            for span in scope.get("spans", [])
        }

    assert settled(read, printed, lambda a, b: a == b) == printed


def _hex_id(value: str) -> str:
    """Span ids in OTLP/JSON are hex; some backends answer in base64."""
    if len(value) == 16 and all(c in "0123456789abcdef" for c in value.lower()):
        return value.lower()
    return base64.b64decode(value).hex()
