"""What the demo's processes sent, summed up from the spans, points and log records received.

Everything here is computed from the OTLP data the demo's receiver decoded, which is the
same data the Collector got when a stack runs, so each figure can be checked against the
backends: per-route figures from ``http.server.request.duration``, LLM tokens and cost from
the ``gen_ai.client.*`` metrics, business figures from the ``adplatform.*`` KPIs.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from otel_obs import semconv
from otel_obs.demo import metrics
from otel_obs.receiver import LogRecord, Point, Span

API_SERVICE = "adplatform-api"
WORKER_SERVICE = "adplatform-worker"
QUANTILES = (0.5, 0.95, 0.99)
QUANTILE_METHOD = (
    "from the http.server.request.duration buckets summed over all processes, "
    "interpolated as PromQL histogram_quantile does"
)

SPAN_KINDS = {
    0: "unspecified",
    1: "internal",
    2: "server",
    3: "client",
    4: "producer",
    5: "consumer",
}
STATUS = {0: "unset", 1: "ok", 2: "error"}
_MARKER = re.compile(r"\[REDACTED:([a-z_]+)\]")

# Span attributes worth showing in the trace tree, in this order.
_SHOWN_ATTRIBUTES = (
    semconv.HTTP_ROUTE,
    semconv.HTTP_RESPONSE_STATUS_CODE,
    "celery.action",
    "celery.state",
    "messaging.message.id",
    semconv.GEN_AI_PROVIDER_NAME,
    semconv.GEN_AI_REQUEST_MODEL,
    semconv.GEN_AI_USAGE_INPUT_TOKENS,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
    semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    semconv.GEN_AI_USAGE_COST,
    semconv.ERROR_TYPE,
)


@dataclass
class Telemetry:
    """One snapshot of what the receiver holds."""

    spans: list[Span]
    points: list[Point]
    logs: list[LogRecord]

    @classmethod
    def from_receiver(cls, receiver: Any) -> Telemetry:
        return cls(receiver.spans(), receiver.points(), receiver.logs())


def service(item: Span | Point | LogRecord) -> str:
    return str(item.resource.get("service.name", "unknown"))


def is_llm_span(span: Span) -> bool:
    return semconv.GEN_AI_OPERATION_NAME in span.attributes


# --- the trace ---------------------------------------------------------------------------


def _traces(spans: Iterable[Span]) -> dict[str, list[Span]]:
    out: dict[str, list[Span]] = {}
    for span in spans:
        out.setdefault(span.trace_id, []).append(span)
    return out


def _has_whole_path(spans: list[Span]) -> bool:
    """A server span, a publish, a task run below it and an LLM call below the task."""
    by_id = {s.span_id: s for s in spans}
    for llm in (s for s in spans if is_llm_span(s)):
        kinds = []
        parent = by_id.get(llm.parent_span_id)
        while parent is not None:
            kinds.append(parent.kind)
            parent = by_id.get(parent.parent_span_id)
        if 5 in kinds and 4 in kinds and kinds[-1] == 2:
            return True
    return False


def pick_trace(spans: Iterable[Span]) -> str | None:
    """The trace to show: request, publish, task and LLM calls, with no error and no retry.

    Of those, the one of median duration: the first ones of a run also pay for connections
    being opened and code being loaded, which is not what a typical request looks like.
    """
    traces = [t for t in _traces(spans).values() if _has_whole_path(t)]
    clean = [t for t in traces if not any(s.status_code == 2 for s in t) and _runs(t) == 1]
    candidates = sorted(clean or traces, key=_duration_ns)
    if not candidates:
        return None
    return candidates[(len(candidates) - 1) // 2][0].trace_id


def _runs(trace: list[Span]) -> int:
    return sum(1 for s in trace if s.kind == 5)


def _duration_ns(trace: list[Span]) -> int:
    return max(s.end_ns for s in trace) - min(s.start_ns for s in trace)


def trace_tree(spans: Iterable[Span], trace_id: str) -> list[dict[str, Any]]:
    """The spans of one trace in depth-first order, each with its depth and timing."""
    trace = [s for s in spans if s.trace_id == trace_id]
    if not trace:
        return []
    ids = {s.span_id for s in trace}
    children: dict[str, list[Span]] = {}
    for span in trace:
        parent = span.parent_span_id if span.parent_span_id in ids else ""
        children.setdefault(parent, []).append(span)
    origin = min(s.start_ns for s in trace)

    out: list[dict[str, Any]] = []

    def visit(span: Span, depth: int) -> None:
        out.append(_node(span, depth, origin))
        for child in sorted(children.get(span.span_id, []), key=lambda s: s.start_ns):
            visit(child, depth + 1)

    for root in sorted(children.get("", []), key=lambda s: s.start_ns):
        visit(root, 0)
    return out


def _node(span: Span, depth: int, origin_ns: int) -> dict[str, Any]:
    shown = {k: span.attributes[k] for k in _SHOWN_ATTRIBUTES if k in span.attributes}
    return {
        "depth": depth,
        "name": span.name,
        "service": service(span),
        "kind": SPAN_KINDS.get(span.kind, str(span.kind)),
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "start_offset_ms": round((span.start_ns - origin_ns) / 1e6, 3),
        "duration_ms": round(span.duration_s * 1000, 3),
        "status": STATUS.get(span.status_code, str(span.status_code)),
        "attributes": shown,
    }


# --- routes ------------------------------------------------------------------------------


def _route_row(
    method: str, route: str, agg: metrics.Aggregate, errors: int, seconds: float
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "method": method,
        "route": route,
        "requests": agg.count,
        "errors_5xx": errors,
        "rate_per_s": round(agg.count / seconds, 3) if seconds > 0 else None,
        "mean_s": agg.sum / agg.count if agg.count else None,
    }
    for q in QUANTILES:
        value = agg.quantile(q)
        row[f"p{round(q * 100)}_s"] = None if math.isnan(value) else value
    return row


def routes(points: list[Point], seconds: float) -> dict[str, Any]:
    """Rate, 5xx count and latency percentiles per route of the API."""
    metric = semconv.METRIC_HTTP_SERVER_REQUEST_DURATION
    api = [p for p in points if p.metric == metric and service(p) == API_SERVICE]

    def route_key(p: Point) -> tuple[str, str]:
        return (
            str(p.attributes.get(semconv.HTTP_REQUEST_METHOD, "")),
            str(p.attributes.get(semconv.HTTP_ROUTE, "(no route)")),
        )

    def is_error(p: Point) -> bool:
        return int(p.attributes.get(semconv.HTTP_RESPONSE_STATUS_CODE, 0) or 0) >= 500

    by_route = metrics.group(api, metric, route_key)
    errors = metrics.group([p for p in api if is_error(p)], metric, route_key)
    total = metrics.group(api, metric, lambda p: "all")
    rows = [
        _route_row(
            method, route, agg, errors.get((method, route), metrics.Aggregate()).count, seconds
        )
        for (method, route), agg in sorted(
            by_route.items(), key=lambda item: (item[0][1], item[0][0])
        )
    ]
    status_codes = Counter()
    for p in api:
        status_codes[str(p.attributes.get(semconv.HTTP_RESPONSE_STATUS_CODE, ""))] += p.count or 0
    all_errors = sum(row["errors_5xx"] for row in rows)
    return {
        "quantiles": QUANTILE_METHOD,
        "routes": rows,
        "total": _route_row("*", "*", total.get("all", metrics.Aggregate()), all_errors, seconds),
        "status_codes": dict(sorted(status_codes.items())),
    }


# --- LLM calls ---------------------------------------------------------------------------


def _model_key(attributes: dict[str, Any]) -> tuple[str, str]:
    model = attributes.get(semconv.GEN_AI_RESPONSE_MODEL) or attributes.get(
        semconv.GEN_AI_REQUEST_MODEL
    )
    return str(attributes.get(semconv.GEN_AI_PROVIDER_NAME, "")), str(model or "")


def _per_model(points: list[Point], metric: str) -> dict[tuple[str, str], metrics.Aggregate]:
    return metrics.group(points, metric, lambda p: _model_key(p.attributes))


def llm(points: list[Point], spans: list[Span]) -> dict[str, Any]:
    """Calls, tokens, cost and cache savings per model: metrics first, cache tokens from spans."""
    duration = _per_model(points, semconv.METRIC_GEN_AI_OPERATION_DURATION)
    errors = _per_model(points, semconv.METRIC_GEN_AI_ERRORS)
    cost = _per_model(points, semconv.METRIC_GEN_AI_COST)
    saved = _per_model(points, semconv.METRIC_GEN_AI_COST_SAVED)
    tokens = metrics.group(
        points,
        semconv.METRIC_GEN_AI_TOKEN_USAGE,
        lambda p: (_model_key(p.attributes), p.attributes.get(semconv.GEN_AI_TOKEN_TYPE)),
    )
    cache = _cache_tokens(spans)

    rows = []
    for key in sorted(set(duration) | set(cost)):
        provider, model = key
        rows.append(
            {
                "provider": provider,
                "model": model,
                "calls": duration.get(key, metrics.Aggregate()).count,
                "errors": int(errors.get(key, metrics.Aggregate()).value),
                "input_tokens": int(tokens.get((key, "input"), metrics.Aggregate()).sum),
                "output_tokens": int(tokens.get((key, "output"), metrics.Aggregate()).sum),
                "cache_read_tokens": cache.get(key, Counter())["read"],
                "cache_write_tokens": cache.get(key, Counter())["write"],
                "cost_usd": cost.get(key, metrics.Aggregate()).value,
                "saved_by_cache_usd": saved.get(key, metrics.Aggregate()).value,
            }
        )
    summed = (
        "calls",
        "errors",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "cost_usd",
        "saved_by_cache_usd",
    )
    total = {field: sum(row[field] for row in rows) for field in summed}
    return {
        "models": rows,
        "total": total,
        "spans": sum(1 for s in spans if is_llm_span(s)),
        "priced_spans_cost_usd": sum(
            float(s.attributes.get(semconv.GEN_AI_USAGE_COST, 0.0)) for s in spans
        ),
    }


def _cache_tokens(spans: list[Span]) -> dict[tuple[str, str], Counter[str]]:
    out: dict[tuple[str, str], Counter[str]] = {}
    for span in spans:
        if not is_llm_span(span):
            continue
        counts = out.setdefault(_model_key(span.attributes), Counter())
        counts["read"] += int(
            span.attributes.get(semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, 0) or 0
        )
        counts["write"] += int(
            span.attributes.get(semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, 0) or 0
        )
    return out


# --- business KPIs -------------------------------------------------------------------------


def _by_attribute(points: list[Point], metric: str, key: str) -> dict[str, float]:
    grouped = metrics.group(points, metric, lambda p: str(p.attributes.get(key, "")))
    return {k: (agg.value if agg.count == 0 else agg.count) for k, agg in sorted(grouped.items())}


def _newest_gauges(points: list[Point], metric: str) -> list[Point]:
    """The gauge points of the newest collection of each process (older series went stale)."""
    newest: dict[str, int] = {}
    for p in points:
        if p.metric == metric:
            instance = str(p.resource.get("service.instance.id", ""))
            newest[instance] = max(newest.get(instance, 0), p.time_ns)
    return [
        p
        for p in points
        if p.metric == metric
        and p.time_ns == newest[str(p.resource.get("service.instance.id", ""))]
    ]


def _overall(points: list[Point], metric: str) -> metrics.Aggregate:
    return metrics.group(points, metric, lambda p: 0).get(0, metrics.Aggregate())


def _gauge(points: list[Point], metric: str) -> list[tuple[dict[str, Any], float | None]]:
    return [(p.attributes, p.value) for p in _newest_gauges(points, metric)]


def business(points: list[Point]) -> dict[str, Any]:
    """The ad-platform KPIs as a backend would show them at the end of the run."""
    spend = _overall(points, semconv.METRIC_ADPLATFORM_AD_SPEND).value
    revenue = _overall(points, semconv.METRIC_ADPLATFORM_REVENUE).value
    errors = _overall(points, semconv.METRIC_ADPLATFORM_PREDICTION_ERROR)
    durations = _overall(points, semconv.METRIC_ADPLATFORM_VIDEO_GENERATION_DURATION)
    top = sorted(
        _gauge(points, semconv.METRIC_ADPLATFORM_TOP_CAMPAIGN_REVENUE),
        key=lambda item: -(item[1] or 0),
    )
    active = _gauge(points, semconv.METRIC_ADPLATFORM_ACTIVE_USERS)
    return {
        "campaigns_created": _by_attribute(
            points, semconv.METRIC_ADPLATFORM_CAMPAIGNS_CREATED, "platform"
        ),
        "ads_published": _by_attribute(points, semconv.METRIC_ADPLATFORM_ADS_PUBLISHED, "platform"),
        "video_generations": _by_attribute(
            points, semconv.METRIC_ADPLATFORM_VIDEO_GENERATIONS, "status"
        ),
        "video_generation_p95_s": _quantile(durations, 0.95),
        "ad_spend_usd": spend,
        "revenue_usd": revenue,
        "roas": revenue / spend if spend else None,
        "predictions": errors.count,
        "prediction_mae": errors.sum / errors.count if errors.count else None,
        "prediction_r2": {
            str(a.get("model")): v
            for a, v in _gauge(points, semconv.METRIC_ADPLATFORM_PREDICTION_R2)
        },
        "active_users": sum(v or 0 for _, v in active) if active else None,
        "top_campaigns": [
            {"campaign": str(a.get("campaign")), "revenue_usd": v} for a, v in top[:3]
        ],
    }


def _quantile(agg: metrics.Aggregate, q: float) -> float | None:
    if not agg.count:
        return None
    value = agg.quantile(q)
    return None if math.isnan(value) else value


# --- logs and masking --------------------------------------------------------------------


def _text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def trace_logs(logs: list[LogRecord], trace_id: str | None) -> list[dict[str, Any]]:
    records = sorted(
        (r for r in logs if trace_id and r.trace_id == trace_id), key=lambda r: r.time_ns
    )
    return [
        {
            "time": datetime.fromtimestamp(r.time_ns / 1e9, tz=timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "service": service(r),
            "severity": r.severity_text or str(r.severity_number),
            "logger": r.scope,
            "span_id": r.span_id,
            "message": _text(r.body),
        }
        for r in records
    ]


def masking(telemetry: Telemetry, personal_data: Iterable[str]) -> dict[str, Any]:
    """Which of the personal values the workload sent appear anywhere in what was exported."""
    exported: list[str] = []
    for record in telemetry.logs:
        exported.append(_text(record.body))
        exported.extend(_text(v) for v in record.attributes.values())
    for span in telemetry.spans:
        exported.extend(_text(v) for v in span.attributes.values())
        exported.append(span.status_message)
        for event in span.events:
            exported.extend(_text(v) for v in event["attributes"].values())
    values = sorted(set(personal_data))
    leaked = [v for v in values if any(v in text for text in exported)]
    markers = Counter(m for text in exported for m in _MARKER.findall(text))
    return {
        "values_checked": len(values),
        "leaked": len(leaked),
        "markers": dict(sorted(markers.items())),
    }


# --- all of it ---------------------------------------------------------------------------


def build(
    telemetry: Telemetry,
    *,
    seconds: float,
    personal_data: Iterable[str] = (),
) -> dict[str, Any]:
    finals = metrics.final_points(telemetry.points)
    trace_id = pick_trace(telemetry.spans)
    return {
        "trace": {
            "trace_id": trace_id,
            "spans": trace_tree(telemetry.spans, trace_id) if trace_id else [],
        },
        "http": routes(finals, seconds),
        "llm": llm(finals, telemetry.spans),
        "business": business(finals),
        "logs": trace_logs(telemetry.logs, trace_id),
        "masking": masking(telemetry, personal_data),
        "received": {
            "spans": len(telemetry.spans),
            "metric_points": len(telemetry.points),
            "log_records": len(telemetry.logs),
            "services": sorted(
                {service(s) for s in telemetry.spans} | {service(p) for p in telemetry.points}
            ),
        },
    }
