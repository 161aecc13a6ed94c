"""API performance: traffic, errors and latency of HTTP services, by route."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.common import (
    ERROR_LOGS,
    LOGS_OF_SERVICE,
    TRACES_OF_SERVICE,
    UP_DOWN,
    about,
    add_rows,
    distribution,
    graph,
    links,
    log_panel,
    new_dashboard,
    quantile,
    ranking,
    rate_sum,
    ratio,
    sel,
    single,
    target,
    trace_table,
)

UID = "otel-obs-api-performance"
HTTP = "http_server_request_duration_seconds"
REQUESTS = f"{HTTP}_count"
SERVER_ERROR = 'http_response_status_code=~"5.."'
ROUTE = ("service_name", "http_request_method", "http_route")
ROUTE_TRACES = 'span.http.route="${__field.labels.http_route}"'

ABOUT = """\
**Is the API healthy, and where is it slow or failing?** Request rate, the share of 5xx
responses, latency percentiles by route, status codes, the slowest routes, errors by type
and whether each service is reporting. Click a series to open the matching traces (Tempo)
or logs (Loki); latency graphs show exemplars, each a link to one real request's trace.
"""


def _service_up() -> str:
    services = (
        'target_info{telemetry_sdk_name!="", job=~"(.+/)?($service)", '
        'deployment_environment_name=~"$environment"}'
    )
    return f"max by (job) ({services}) or max by (job) (last_over_time({services}[1h])) * 0"


def overview() -> list[object]:
    all_requests = rate_sum(REQUESTS)
    return [
        about(ABOUT),
        single(
            "Request rate",
            "HTTP requests per second served by the chosen services.",
            "reqps",
            all_requests,
            links(),
            width=6,
        ),
        single(
            "5xx error ratio",
            "Share of requests answered with a 5xx status; 0 when there is no traffic.",
            "percentunit",
            ratio(rate_sum(REQUESTS, extra=SERVER_ERROR), all_requests),
            links("status = error", ERROR_LOGS),
            width=6,
        ),
        single(
            "p95 latency",
            "95th percentile of request duration over all routes.",
            "s",
            quantile(0.95, HTTP),
            links("duration > 500ms"),
            width=6,
        ),
        single(
            "Services up",
            "1 while a service sends telemetry; 0 if it sent some in the last hour but none now.",
            "none",
            _service_up(),
            links(),
            legend="{{job}}",
            width=6,
            mappings=UP_DOWN,
        ),
    ]


def traffic_and_errors() -> list[object]:
    route_links = links(ROUTE_TRACES)
    return [
        graph(
            "Requests by route",
            "Requests per second by service, method and route template.",
            "reqps",
            [
                target(
                    rate_sum(REQUESTS, ROUTE),
                    "{{service_name}} {{http_request_method}} {{http_route}}",
                )
            ],
            route_links,
        ),
        graph(
            "5xx ratio by route",
            "Share of each route's requests answered with a 5xx status.",
            "percentunit",
            [
                target(
                    ratio(rate_sum(REQUESTS, ROUTE, SERVER_ERROR), rate_sum(REQUESTS, ROUTE)),
                    "{{service_name}} {{http_request_method}} {{http_route}}",
                )
            ],
            links(f"{ROUTE_TRACES} && status = error"),
        ),
        graph(
            "Responses by status code",
            "Responses per second by HTTP status code, stacked.",
            "reqps",
            [
                target(
                    rate_sum(REQUESTS, ("http_response_status_code",)),
                    "{{http_response_status_code}}",
                )
            ],
            links("span.http.response.status_code=${__field.labels.http_response_status_code}"),
            stacked=True,
        ),
        graph(
            "Errors by type",
            "Failed requests per second by error.type: the exception class or the 5xx status.",
            "reqps",
            [
                target(
                    rate_sum(
                        REQUESTS, ("service_name", "http_route", "error_type"), 'error_type!=""'
                    ),
                    "{{service_name}} {{http_route}} {{error_type}}",
                )
            ],
            links(f"{ROUTE_TRACES} && status = error", ERROR_LOGS),
        ),
        graph(
            "In-flight requests",
            "Requests being served right now, by service.",
            "short",
            [
                target(
                    f"sum by (service_name) (http_server_active_requests{sel()})",
                    "{{service_name}}",
                )
            ],
            links(),
        ),
    ]


def latency() -> list[object]:
    percentiles = [
        target(quantile(q, HTTP), f"p{int(q * 100)}", exemplar=True) for q in (0.5, 0.95, 0.99)
    ]
    return [
        graph(
            "Latency p50 / p95 / p99",
            "Request duration percentiles over all chosen routes; dots are exemplar traces.",
            "s",
            percentiles,
            links("duration > 500ms"),
        ),
        graph(
            "p95 latency by route",
            "95th percentile of request duration for each route template.",
            "s",
            [
                target(
                    quantile(0.95, HTTP, ROUTE),
                    "{{service_name}} {{http_request_method}} {{http_route}}",
                    exemplar=True,
                )
            ],
            links(ROUTE_TRACES),
        ),
        ranking(
            "Slowest routes over the time range",
            "The ten routes with the highest p95 duration over the whole time range.",
            "s",
            f"topk(10, {quantile(0.95, HTTP, ROUTE, window='$__range')})",
            links(ROUTE_TRACES),
        ),
        distribution(
            "Latency distribution",
            "How many requests fell in each duration bucket over time; exemplars link to traces.",
            HTTP,
            links("duration > 500ms"),
        ),
    ]


def traces_and_logs() -> list[object]:
    return [
        trace_table(
            "Slow requests (traces over 500 ms)",
            "Recent server spans of the chosen services that took longer than 500 ms.",
            "{" + TRACES_OF_SERVICE + " && kind = server && duration > 500ms}",
        ),
        log_panel(
            "Error logs",
            "Recent error logs of the chosen services, with their trace ids.",
            "{" + LOGS_OF_SERVICE + ", " + ERROR_LOGS + "}",
        ),
    ]


def build() -> db.Dashboard:
    dashboard = new_dashboard(
        "otel-obs / API performance",
        UID,
        "Traffic, errors and latency of HTTP services by route.",
        ["api", "http"],
    )
    return add_rows(
        dashboard,
        [
            ("Overview", overview()),
            ("Traffic and errors", traffic_and_errors()),
            ("Latency", latency()),
            ("Traces and logs", traces_and_logs()),
        ],
    )
