"""The demo summary computed from decoded OTLP data: series, traces, routes, costs, masking."""

from __future__ import annotations

import itertools

import pytest

from otel_obs import semconv
from otel_obs.demo import metrics, summary
from otel_obs.receiver import LogRecord, Point, Span

API = {"service.name": "adplatform-api", "service.instance.id": "api-1"}
WORKER_A = {"service.name": "adplatform-worker", "service.instance.id": "w-1"}
WORKER_B = {"service.name": "adplatform-worker", "service.instance.id": "w-2"}
_ids = itertools.count(1)


def counter(
    metric: str, value: float, t: int, resource: dict, temporality: int = 2, **attributes: str
) -> Point:
    return Point(
        metric=metric,
        unit="",
        kind="sum",
        attributes=attributes,
        resource=resource,
        scope="s",
        value=value,
        time_ns=t,
        temporality=temporality,
        is_monotonic=True,
    )


def test_cumulative_series_count_their_latest_point_and_delta_series_their_sum() -> None:
    points = [
        counter("c", 1.0, 1, WORKER_A),
        counter("c", 3.0, 2, WORKER_A),  # one process: 3
        counter("c", 2.0, 1, WORKER_B),
        counter("c", 5.0, 3, WORKER_B),  # another: 5
        counter("c", 4.0, 1, API, temporality=1),
        counter("c", 6.0, 2, API, temporality=1),  # delta: 10
    ]

    finals = metrics.final_points(points)

    assert sorted(p.value for p in finals) == [3.0, 5.0, 10.0]
    assert metrics.group(finals, "c", lambda p: 0)[0].value == 18.0


def span(
    name: str,
    trace: str,
    kind: int,
    parent: str = "",
    resource: dict = API,
    start: int = 0,
    end: int = 10,
    status: int = 0,
    **attributes: object,
) -> Span:
    """A span; ``start`` and ``end`` in milliseconds."""
    return Span(
        name=name,
        trace_id=trace,
        span_id=f"{next(_ids):016x}",
        parent_span_id=parent,
        kind=kind,
        start_ns=start * 1_000_000,
        end_ns=end * 1_000_000,
        attributes=dict(attributes),
        resource=resource,
        scope="s",
        status_code=status,
        status_message="",
    )


def video_trace(trace: str, llm_status: int = 0, start: int = 0) -> list[Span]:
    server = span("POST /campaigns/{campaign_id}/videos", trace, 2, start=start, end=start + 50)
    publish = span(
        "apply_async/adplatform.generate_video",
        trace,
        4,
        server.span_id,
        start=start + 10,
        end=start + 12,
    )
    run = span(
        "run/adplatform.generate_video",
        trace,
        5,
        publish.span_id,
        WORKER_A,
        start + 20,
        start + 400,
    )
    first = span(
        "chat gpt-4o",
        trace,
        3,
        run.span_id,
        WORKER_A,
        start + 30,
        start + 60,
        **{semconv.GEN_AI_OPERATION_NAME: "chat"},
    )
    second = span(
        "generate_content gemini-2.5-flash",
        trace,
        3,
        run.span_id,
        WORKER_A,
        start + 70,
        start + 90,
        status=llm_status,
        **{semconv.GEN_AI_OPERATION_NAME: "generate_content"},
    )
    return [second, run, server, first, publish]  # arrival order differs from tree order


def test_the_shown_trace_goes_from_request_through_the_task_to_llm_calls_without_errors() -> None:
    lonely = [span("GET /campaigns", "t-lonely", 2)]
    failing = video_trace("t-failing", llm_status=2, start=0)
    complete = video_trace("t-complete", start=1000)

    assert summary.pick_trace(lonely + failing + complete) == "t-complete"
    assert summary.pick_trace(lonely) is None


def test_of_several_complete_traces_the_one_of_median_duration_is_shown() -> None:
    fast, typical, slow = video_trace("fast"), video_trace("typical"), video_trace("slow")
    for trace, stretch in ((typical, 100), (slow, 5000)):
        trace[0].end_ns += stretch * 1_000_000  # the last LLM call ends later

    assert summary.pick_trace(slow + fast + typical) == "typical"


def test_trace_tree_lists_spans_depth_first_with_depth_and_offsets() -> None:
    spans = video_trace("t", start=1000)

    tree = summary.trace_tree(spans, "t")

    assert [(n["depth"], n["name"]) for n in tree] == [
        (0, "POST /campaigns/{campaign_id}/videos"),
        (1, "apply_async/adplatform.generate_video"),
        (2, "run/adplatform.generate_video"),
        (3, "chat gpt-4o"),
        (3, "generate_content gemini-2.5-flash"),
    ]
    assert (tree[2]["start_offset_ms"], tree[2]["duration_ms"]) == (20.0, 380.0)
    assert tree[2]["parent_span_id"] == tree[1]["span_id"]


def duration_point(route: str, status: int, counts: list[int], total: float, t: int = 1) -> Point:
    return Point(
        metric=semconv.METRIC_HTTP_SERVER_REQUEST_DURATION,
        unit="s",
        kind="histogram",
        attributes={
            semconv.HTTP_ROUTE: route,
            semconv.HTTP_REQUEST_METHOD: "GET",
            semconv.HTTP_RESPONSE_STATUS_CODE: status,
        },
        resource=API,
        scope="s",
        count=sum(counts),
        sum=total,
        bucket_counts=counts,
        bounds=[0.1, 0.5],
        time_ns=t,
        temporality=2,
    )


def test_routes_count_requests_and_5xx_and_rate_over_the_run() -> None:
    points = [
        duration_point("/a", 200, [3, 1, 0], 0.9),
        duration_point("/a", 500, [0, 0, 1], 2.0),
        duration_point("/a", 404, [1, 0, 0], 0.01),
        duration_point("/b", 200, [2, 0, 0], 0.1, t=1),
        duration_point(
            "/b", 200, [4, 0, 0], 0.2, t=2
        ),  # a later cumulative point of the same series
    ]

    http = summary.routes(metrics.final_points(points), seconds=2.0)

    by_route = {row["route"]: row for row in http["routes"]}
    assert (by_route["/a"]["requests"], by_route["/a"]["errors_5xx"]) == (6, 1)
    assert (by_route["/b"]["requests"], by_route["/b"]["errors_5xx"]) == (4, 0)
    assert by_route["/a"]["rate_per_s"] == 3.0
    assert http["total"]["requests"] == 10
    assert http["status_codes"] == {"200": 8, "404": 1, "500": 1}
    # /b: all 4 observations in (0, 0.1]: p50 = 0.1 * 2/4
    assert by_route["/b"]["p50_s"] == pytest.approx(0.05)


def test_llm_cost_per_model_comes_from_the_cost_counter_and_sums_to_the_total() -> None:
    def model(name: str, provider: str) -> dict[str, str]:
        return {
            semconv.GEN_AI_PROVIDER_NAME: provider,
            semconv.GEN_AI_REQUEST_MODEL: name,
            semconv.GEN_AI_OPERATION_NAME: "chat",
        }

    points = [
        counter(semconv.METRIC_GEN_AI_COST, 0.0075, 1, WORKER_A, **model("gpt-4o", "openai")),
        counter(semconv.METRIC_GEN_AI_COST, 0.0070, 1, WORKER_B, **model("gpt-4o", "openai")),
        counter(
            semconv.METRIC_GEN_AI_COST, 0.054399, 1, API, **model("claude-sonnet-4-5", "anthropic")
        ),
    ]
    spans = [
        span(
            "chat claude-sonnet-4-5",
            "t",
            3,
            resource=API,
            **model("claude-sonnet-4-5", "anthropic"),
            **{semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: 12304},
        )
    ]

    result = summary.llm(metrics.final_points(points), spans)

    costs = {row["model"]: row["cost_usd"] for row in result["models"]}
    assert costs == {"gpt-4o": pytest.approx(0.0145), "claude-sonnet-4-5": pytest.approx(0.054399)}
    assert result["total"]["cost_usd"] == pytest.approx(0.068899)
    claude = next(row for row in result["models"] if row["model"] == "claude-sonnet-4-5")
    assert claude["cache_write_tokens"] == 12304


def test_masking_reports_personal_values_found_anywhere_in_the_export() -> None:
    def record(body: str) -> LogRecord:
        return LogRecord(
            body=body,
            severity_text="INFO",
            severity_number=9,
            trace_id="t",
            span_id="s",
            attributes={},
            resource=API,
            scope="adplatform.api",
            time_ns=1,
        )

    telemetry = summary.Telemetry(
        spans=[span("x", "t", 2, user="maria@example.com")],
        points=[],
        logs=[
            record("sent to [REDACTED:email] and [REDACTED:phone]"),
            record("card [REDACTED:card]"),
        ],
    )

    result = summary.masking(
        telemetry, ["maria@example.com", "+44 20 7946 0958", "4111 1111 1111 1111"]
    )

    assert result == {
        "values_checked": 3,
        "leaked": 1,
        "markers": {"card": 1, "email": 1, "phone": 1},
    }
