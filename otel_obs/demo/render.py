"""The demo summary as text for a terminal: a trace tree and a few small tables."""

from __future__ import annotations

from typing import Any

from otel_obs import semconv

MESSAGE_WIDTH = 100


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.6f}"


def tree_prefixes(depths: list[int]) -> list[str]:
    """Box-drawing prefixes for nodes listed depth-first with their depths."""
    prefixes = []
    for i, depth in enumerate(depths):
        parts = []
        for level in range(1, depth + 1):
            # Does a later node sit at `level` before the branch closes (a shallower node)?
            later = False
            for following in depths[i + 1 :]:
                if following <= level:
                    later = following == level
                    break
            if level == depth:
                parts.append("├─ " if later else "└─ ")
            else:
                parts.append("│  " if later else "   ")
        prefixes.append("".join(parts))
    return prefixes


def _span_note(node: dict[str, Any]) -> str:
    a = node["attributes"]
    notes = []
    if semconv.HTTP_RESPONSE_STATUS_CODE in a:
        notes.append(f"HTTP {a[semconv.HTTP_RESPONSE_STATUS_CODE]}")
    if "celery.state" in a:
        notes.append(str(a["celery.state"]).lower())
    if semconv.GEN_AI_USAGE_INPUT_TOKENS in a:
        tokens = f"{a[semconv.GEN_AI_USAGE_INPUT_TOKENS]} in"
        cached = a.get(semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)
        if cached:
            tokens += f" ({cached} cached)"
        notes.append(f"{tokens} / {a.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS, '?')} out")
    if semconv.GEN_AI_USAGE_COST in a:
        notes.append(_usd(a[semconv.GEN_AI_USAGE_COST]))
    if node["status"] == "error":
        notes.append(f"ERROR {a.get(semconv.ERROR_TYPE, '')}".strip())
    return ", ".join(notes)


def trace(summary: dict[str, Any]) -> list[str]:
    nodes = summary["trace"]["spans"]
    if not nodes:
        return ["No trace went all the way from a request through Celery to an LLM call."]
    trace_id = summary["trace"]["trace_id"]
    lines = [f"One trace: request -> Celery publish -> task -> LLM calls  (trace_id {trace_id})"]
    for prefix, node in zip(tree_prefixes([n["depth"] for n in nodes]), nodes):
        name = f"{prefix}{node['name']}"
        timing = f"+{node['start_offset_ms']:>8.1f} ms {node['duration_ms']:>9.1f} ms"
        note = _span_note(node)
        lines.append(f"  {name:<56.56} {node['service']:<18} {timing}  {note}".rstrip())
    return lines


def routes(summary: dict[str, Any]) -> list[str]:
    http = summary["http"]
    lines = [
        "Routes of adplatform-api",
        f"  (percentiles {http['quantiles']})",
        f"  {'route':<46} {'req':>5} {'req/s':>6} {'5xx':>4} {'p50':>10} {'p95':>10} {'p99':>10}",
    ]
    for row in [*http["routes"], http["total"]]:
        label = "all routes" if row["route"] == "*" else f"{row['method']} {row['route']}"
        counts = f"{row['requests']:>5} {row['rate_per_s'] or 0:>6.2f} {row['errors_5xx']:>4}"
        times = " ".join(f"{_ms(row[key]):>10}" for key in ("p50_s", "p95_s", "p99_s"))
        lines.append(f"  {label:<46.46} {counts} {times}")
    return lines


def llm(summary: dict[str, Any]) -> list[str]:
    data = summary["llm"]
    columns = ("calls", "errors", "input_tokens", "cache_read_tokens", "cache_write_tokens")
    widths = (5, 6, 8, 8, 8)
    heads = ("calls", "errors", "input", "cached", "written")
    lines = [
        "LLM calls (gen_ai.client.* metrics; cache tokens from the spans)",
        "  "
        + f"{'provider/model':<30} "
        + " ".join(f"{h:>{w}}" for h, w in zip(heads, widths))
        + f" {'output':>7} {'cost':>11} {'saved':>11}",
    ]
    for row in [*data["models"], {**data["total"], "provider": "total", "model": ""}]:
        label = f"{row['provider']}/{row['model']}" if row["model"] else row["provider"]
        numbers = " ".join(f"{row[c]:>{w}}" for c, w in zip(columns, widths))
        money = f"{_usd(row['cost_usd']):>11} {_usd(row['saved_by_cache_usd']):>11}"
        lines.append(f"  {label:<30.30} {numbers} {row['output_tokens']:>7} {money}")
    return lines


def _counts(values: dict[str, float]) -> str:
    total = int(sum(values.values()))
    detail = ", ".join(f"{k} {int(v)}" for k, v in values.items())
    return f"{total} ({detail})" if detail else "0"


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def business(summary: dict[str, Any]) -> list[str]:
    b = summary["business"]
    r2 = ", ".join(f"{model} {value:.3f}" for model, value in b["prediction_r2"].items()) or "-"
    top = ", ".join(f"{t['campaign']} ${t['revenue_usd']:,.0f}" for t in b["top_campaigns"]) or "-"
    money = f"${b['ad_spend_usd']:,.2f} / ${b['revenue_usd']:,.2f}"
    videos = _counts(b["video_generations"])
    mae = _number(b["prediction_mae"], ".3f")
    return [
        "Business KPIs (adplatform.* metrics)",
        f"  campaigns created    {_counts(b['campaigns_created'])}",
        f"  ads published        {_counts(b['ads_published'])}",
        f"  video generations    {videos}, p95 {_ms(b['video_generation_p95_s'])}",
        f"  ad spend / revenue   {money}  (ROAS {_number(b['roas'], '.2f')})",
        f"  ROAS predictions     {b['predictions']}, MAE {mae}, R² {r2}",
        f"  active users         {_number(b['active_users'], '.0f')}",
        f"  top campaigns        {top}",
    ]


def logs(summary: dict[str, Any]) -> list[str]:
    masking = summary["masking"]
    markers = ", ".join(f"{k} {v}" for k, v in masking["markers"].items()) or "none"
    lines = ["Log lines of that trace, as exported (personal data masked by otel-obs)"]
    for record in summary["logs"]:
        when, message = record["time"][11:23], record["message"][:MESSAGE_WIDTH]
        lines.append(f"  {when} {record['severity']:<7} {record['service']:<18} {message}")
    if not summary["logs"]:
        lines.append("  (no log records carried this trace id)")
    lines.append(
        f"  masking: {masking['values_checked']} personal values sent by the workload, "
        f"{masking['leaked']} found unmasked in any exported log or span; markers: {markers}"
    )
    return lines


def where(summary: dict[str, Any]) -> list[str]:
    q = summary["queries"]
    lines = ["Where to see the same"]
    if "prometheus" in q:
        lines.append(f"  Prometheus of the running stack: {q['prometheus']}")
    lines.append(f"  Grafana (docker compose -f collector/docker-compose.yaml up): {q['grafana']}")
    for title, url in q["grafana_links"].items():
        if "/d/" in url:
            lines.append(f"    {title}: {url}")
    lines += [f"  PromQL  {name}: {query}" for name, query in q["promql"].items()]
    lines += [f"  TraceQL {name}: {query}" for name, query in q["traceql"].items()]
    lines += [f"  LogQL   {name}: {query}" for name, query in q["logql"].items()]
    return lines


def _forwarding(telemetry: dict[str, Any]) -> str:
    if telemetry["forwarded_to"]:
        return (
            f"forwarded unchanged to the Collector at {telemetry['forwarded_to']}"
            f" ({telemetry['found']}); {telemetry['forward_failures']} forward failures"
        )
    if telemetry["found"]:
        return f"not forwarded to a stack ({telemetry['found']})"
    return (
        "no stack running, so nothing was forwarded: run `otel-obs stack up` first to send "
        "the same data to the Collector and Prometheus"
    )


def _shutdown(outcome: dict[str, Any]) -> str:
    services = {name: o for name, o in outcome.items() if isinstance(o, dict)}
    unclean = [f"{name} (exit {o['exit_code']})" for name, o in services.items() if not o["clean"]]
    if not unclean:
        return f"every process stopped cleanly in {outcome['seconds']} s"
    return f"stopped in {outcome['seconds']} s; not cleanly: {', '.join(unclean)}"


def header(summary: dict[str, Any]) -> list[str]:
    d, received = summary["demo"], summary["received"]
    work, tasks = d["workload"], d["tasks"]
    counts = (
        f"{received['spans']} spans, {received['metric_points']} metric points, "
        f"{received['log_records']} log records"
    )
    return [
        (
            f"otel-obs demo: {work['seconds']:.1f} s of traffic, {work['requests']} requests, "
            f"{tasks['finished']}/{tasks['enqueued']} video tasks finished"
        ),
        f"  broker      {d['broker']['description']}",
        f"  telemetry   OTLP/HTTP from every process to {d['telemetry']['receiver']}: {counts}",
        f"              {_forwarding(d['telemetry'])}",
        f"  shutdown    {_shutdown(d['shutdown'])}",
    ]


def text(summary: dict[str, Any]) -> str:
    sections = (header, trace, routes, llm, business, logs, where)
    return "\n\n".join("\n".join(section(summary)) for section in sections) + "\n"
