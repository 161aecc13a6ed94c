"""Where to see the demo's figures in the backends: Grafana dashboards and the queries behind them.

Metric names are the ones Prometheus holds after the Collector's translation
(``collector/METRICS.md``); trace and log queries find the trace the summary printed.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

from otel_obs.demo.summary import API_SERVICE

GRAFANA_URL = "http://localhost:3000"  # the docker-compose stack in collector/
DASHBOARDS_DIR = Path(__file__).resolve().parent.parent.parent / "dashboards"


def dashboards(directory: Path = DASHBOARDS_DIR) -> list[dict[str, str]]:
    """Title and uid of each dashboard JSON shipped in ``dashboards/``."""
    found = []
    for path in sorted(directory.glob("*.json")):
        try:
            model = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(model, dict) and model.get("uid"):
            found.append(
                {
                    "title": str(model.get("title", path.stem)),
                    "uid": str(model["uid"]),
                    "file": path.name,
                }
            )
    return found


def promql() -> dict[str, str]:
    api = f'service_name="{API_SERVICE}"'
    requests = f"http_server_request_duration_seconds_count{{{api}}}"
    errors = (
        f'http_server_request_duration_seconds_count{{{api}, http_response_status_code=~"5.."}}'
    )
    buckets = f"http_server_request_duration_seconds_bucket{{{api}}}"
    return {
        "requests_per_route": f"sum by (http_route) ({requests})",
        "errors_5xx_per_route": f"sum by (http_route) ({errors})",
        "p95_latency_per_route": (
            f"histogram_quantile(0.95, sum by (le, http_route) (rate({buckets}[5m])))"
        ),
        "cost_usd_per_model": (
            "sum by (gen_ai_provider_name, gen_ai_request_model) (gen_ai_client_cost_USD_total)"
        ),
        "cost_usd_total": "sum(gen_ai_client_cost_USD_total)",
        "saved_by_cache_usd": "sum(gen_ai_client_cost_saved_USD_total)",
        "tokens_per_type": "sum by (gen_ai_token_type) (gen_ai_client_token_usage_sum)",
        "video_generations": "sum by (status) (adplatform_video_generations_total)",
        "roas": "sum(adplatform_revenue_USD_total) / sum(adplatform_ad_spend_USD_total)",
        "prediction_mae": (
            "sum(adplatform_prediction_error_sum) / sum(adplatform_prediction_error_count)"
        ),
    }


def traceql(trace_id: str | None) -> dict[str, str]:
    out = {
        "llm_calls_with_cost": "{ span.gen_ai.usage.cost > 0 }",
        "video_tasks": '{ resource.service.name = "adplatform-worker" && kind = consumer }',
    }
    if trace_id:
        out["this_trace"] = f'{{ trace:id = "{trace_id}" }}'
    return out


def logql(trace_id: str | None) -> dict[str, str]:
    out = {"api_errors": '{service_name="adplatform-api"} | severity_text=~"ERROR|WARNING"'}
    if trace_id:
        out["this_trace"] = f'{{service_name=~"adplatform-.+"}} | trace_id="{trace_id}"'
    return out


def _explore_url(grafana: str, datasource: str, kind: str, query: str) -> str:
    pane = {
        "a": {
            "datasource": datasource,
            "queries": [
                {"refId": "A", "datasource": {"type": kind, "uid": datasource}, "query": query}
            ],
            "range": {"from": "now-1h", "to": "now"},
        }
    }
    panes = urllib.parse.quote(json.dumps(pane, separators=(",", ":")))
    return f"{grafana}/explore?schemaVersion=1&panes={panes}"


def build(
    trace_id: str | None, prometheus_url: str | None = None, grafana_url: str = GRAFANA_URL
) -> dict[str, Any]:
    prom = promql()
    links: dict[str, str] = {
        d["title"]: f"{grafana_url}/d/{d['uid']}?var-service={API_SERVICE}&from=now-30m&to=now"
        for d in dashboards()
    }
    if trace_id:
        links["this trace (Tempo)"] = _explore_url(grafana_url, "tempo", "tempo", trace_id)
        links["this trace's logs (Loki)"] = _explore_url(
            grafana_url, "loki", "loki", logql(trace_id)["this_trace"]
        )
    out: dict[str, Any] = {
        "grafana": grafana_url,
        "grafana_links": links,
        "promql": prom,
        "traceql": traceql(trace_id),
        "logql": logql(trace_id),
    }
    if prometheus_url:
        out["prometheus"] = prometheus_url
        out["prometheus_links"] = {
            name: f"{prometheus_url}/graph?g0.expr={urllib.parse.quote(query)}&g0.tab=1"
            for name, query in prom.items()
        }
    return out
