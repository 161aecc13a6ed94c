"""What every otel-obs dashboard shares: variables, selectors, PromQL helpers, panels, links.

Series names are those Prometheus stores after the Collector's translation (see
collector/METRICS.md). Every application series carries ``service_name`` and
``deployment_environment_name`` labels, which the Collector's exporter copies from the
resource, so one selector filters any panel by the dashboard's service and environment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from urllib.parse import quote

from grafana_foundation_sdk.builders import (
    bargauge,
    heatmap,
    logs,
    loki,
    prometheus,
    stat,
    table,
    tempo,
    text,
    timeseries,
)
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders.common import ReduceDataOptions, StackingConfig
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    GraphDrawStyle,
    StackingMode,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    ValueMap,
    ValueMappingResult,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

# Data source uids: Prometheus is chosen by the $datasource variable; Tempo and Loki have
# the fixed uids the bundled Grafana provisions, because data links cannot follow a variable
# into another data source reliably.
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="${datasource}")
TEMPO = DataSourceRef(type_val="tempo", uid="tempo")
LOKI = DataSourceRef(type_val="loki", uid="loki")

RATE = "$__rate_interval"
SERVICE_FILTER = 'service_name=~"$service", deployment_environment_name=~"$environment"'
# Application services have an SDK; the Collector's own target_info has none.
APP_TARGETS = 'target_info{telemetry_sdk_name!=""}'
# The Collector's exporter sets job to "namespace/name"; this keeps the name.
SERVICE_FROM_JOB = r"/^(?:.*\/)?([^\/]+)$/"

# Smallest denominator of a ratio: zero traffic gives 0 rather than no value.
EPSILON = "1e-9"

TRACES_OF_SERVICE = 'resource.service.name=~"${service:pipe}"'
LOGS_OF_SERVICE = 'service_name=~"${service:pipe}"'
# Loki indexes severity_text as a stream label (collector/loki/loki.yaml).
ERROR_LOGS = 'severity_text=~"ERROR|CRITICAL|FATAL"'


# --- PromQL ----------------------------------------------------------------------------------


def sel(extra: str = "") -> str:
    """The series selector for the chosen services and environments, plus ``extra`` matchers."""
    return "{" + SERVICE_FILTER + (", " + extra if extra else "") + "}"


def by(labels: Sequence[str]) -> str:
    return f" by ({', '.join(labels)})" if labels else ""


def rate_sum(metric: str, labels: Sequence[str] = (), extra: str = "", window: str = RATE) -> str:
    """``sum by (labels) (rate(metric{filter}[window]))``."""
    return f"sum{by(labels)} (rate({metric}{sel(extra)}[{window}]))"


def increase_sum(
    metric: str, labels: Sequence[str] = (), extra: str = "", window: str = RATE
) -> str:
    return f"sum{by(labels)} (increase({metric}{sel(extra)}[{window}]))"


def quantile(
    q: float, histogram: str, labels: Sequence[str] = (), extra: str = "", window: str = RATE
) -> str:
    """A quantile of a histogram: buckets are rated first, then summed by ``le``."""
    keep = ", ".join(("le", *labels))
    return (
        f"histogram_quantile({q}, sum by ({keep}) (rate({histogram}_bucket{sel(extra)}[{window}])))"
    )


def ratio(numerator: str, denominator: str) -> str:
    """``numerator / denominator`` that reads 0, not nothing, when the numerator has no series.

    Both sides must be aggregated by the same labels. Where the denominator exists but the
    numerator does not (no errors yet), the numerator falls back to 0 for those labels.
    """
    return f"({numerator} or ({denominator}) * 0) / clamp_min({denominator}, {EPSILON})"


def per_hour(expr: str) -> str:
    return f"{expr} * 3600"


# --- Links to traces and logs ------------------------------------------------------------------

_VARIABLE = re.compile(r"(\$\{[^}]*\})")


def explore_url(datasource: DataSourceRef, query: dict[str, object]) -> str:
    """A Grafana Explore URL running ``query`` on ``datasource`` over the panel's time range."""
    pane = {
        "otel": {
            "datasource": datasource.uid,
            "queries": [
                {
                    "refId": "A",
                    "datasource": {"type": datasource.type_val, "uid": datasource.uid},
                    **query,
                }
            ],
            "range": {"from": "${__from}", "to": "${__to}"},
        }
    }
    encoded = json.dumps(pane, separators=(",", ":"), sort_keys=True)
    # Grafana fills ${...} before it opens the link, so those stay as they are.
    parts = _VARIABLE.split(encoded)
    body = "".join(p if _VARIABLE.fullmatch(p) else quote(p, safe="") for p in parts)
    return f"/explore?schemaVersion=1&orgId=1&panes={body}"


def traces_link(traceql: str) -> db.DashboardLink:
    query = {"queryType": "traceql", "query": traceql, "limit": 20}
    return (
        db.DashboardLink("Matching traces in Tempo")
        .url(explore_url(TEMPO, query))
        .target_blank(True)
    )


def logs_link(logql: str) -> db.DashboardLink:
    query = {"expr": logql, "queryType": "range"}
    return (
        db.DashboardLink("Matching logs in Loki").url(explore_url(LOKI, query)).target_blank(True)
    )


def links(traceql: str = "", log_streams: str = "") -> list[db.DashboardLink]:
    """Links to the traces and logs of the chosen services, narrowed by the conditions given.

    ``traceql`` is a span condition (``status = error``), ``log_streams`` a Loki stream
    matcher (``severity_text=~"ERROR"``).
    """
    span_filter = " && ".join(c for c in (TRACES_OF_SERVICE, traceql) if c)
    stream_filter = ", ".join(c for c in (LOGS_OF_SERVICE, log_streams) if c)
    return [traces_link("{" + span_filter + "}"), logs_link("{" + stream_filter + "}")]


# --- Queries -----------------------------------------------------------------------------------


def target(expr: str, legend: str = "", *, exemplar: bool = False) -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr).legend_format(legend or "__auto").range()
    return query.exemplar(exemplar)


def instant(expr: str, legend: str = "") -> prometheus.Dataquery:
    return (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend or "__auto")
        .instant()
        .format(PromQueryFormat.TABLE)
    )


def _with_targets(panel: object, targets: Sequence[object]) -> None:
    for index, query in enumerate(targets):
        query.ref_id(chr(ord("A") + index))
        panel.with_target(query)


# --- Panels ------------------------------------------------------------------------------------


def about(markdown: str) -> text.Panel:
    """The short text at the top saying what the dashboard answers."""
    return text.Panel().title("What this dashboard answers").content(markdown).span(24).height(4)


def graph(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[prometheus.Dataquery],
    panel_links: list[db.DashboardLink],
    *,
    stacked: bool = False,
    bars: bool = False,
    width: int = 12,
    interval: str | None = None,
    no_value: str | None = None,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(PROMETHEUS)
        .span(width)
        .height(8)
        .fill_opacity(10 if not bars else 80)
        .data_links(panel_links)
    )
    if stacked:
        panel.stacking(StackingConfig().mode(StackingMode.NORMAL))
    if bars:
        panel.draw_style(GraphDrawStyle.BARS)
    if interval:
        panel.interval(interval)
    if no_value is not None:
        panel.no_value(no_value)
    _with_targets(panel, targets)
    return panel


def single(
    title: str,
    description: str,
    unit: str,
    expr: str,
    panel_links: list[db.DashboardLink],
    *,
    legend: str = "",
    width: int = 4,
    mappings: dict[str, tuple[str, str]] | None = None,
) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(PROMETHEUS)
        .span(width)
        .height(4)
        .graph_mode(BigValueGraphMode.AREA)
        .color_mode(BigValueColorMode.VALUE)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .data_links(panel_links)
    )
    if mappings:
        options = {
            value: ValueMappingResult(text=label, color=color)
            for value, (label, color) in mappings.items()
        }
        panel.mappings([ValueMap(options=options)]).graph_mode(BigValueGraphMode.NONE)
    _with_targets(panel, [target(expr, legend)])
    return panel


def ranking(
    title: str,
    description: str,
    unit: str,
    expr: str,
    panel_links: list[db.DashboardLink],
    *,
    width: int = 12,
) -> table.Panel:
    """A table of one instant query, largest first."""
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(PROMETHEUS)
        .span(width)
        .height(8)
        .data_links(panel_links)
    )
    _with_targets(panel, [instant(expr)])
    return panel


def bars(
    title: str,
    description: str,
    unit: str,
    expr: str,
    legend: str,
    panel_links: list[db.DashboardLink],
    *,
    width: int = 12,
) -> bargauge.Panel:
    panel = (
        bargauge.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(PROMETHEUS)
        .span(width)
        .height(8)
        .data_links(panel_links)
    )
    _with_targets(panel, [instant(expr, legend).format(PromQueryFormat.TIME_SERIES)])
    return panel


def distribution(
    title: str,
    description: str,
    histogram: str,
    panel_links: list[db.DashboardLink],
    *,
    extra: str = "",
    width: int = 12,
) -> heatmap.Panel:
    """A latency heatmap from a histogram's buckets, with exemplars."""
    expr = f"sum by (le) (increase({histogram}_bucket{sel(extra)}[{RATE}]))"
    query = target(expr, "{{le}}", exemplar=True).format(PromQueryFormat.HEATMAP)
    panel = (
        heatmap.Panel()
        .title(title)
        .description(description)
        .unit("s")
        # The buckets come from Prometheus as they are; Grafana must not re-bucket them.
        .calculate(False)
        .datasource(PROMETHEUS)
        .span(width)
        .height(8)
        .data_links(panel_links)
    )
    _with_targets(panel, [query])
    return panel


def trace_table(title: str, description: str, traceql: str, *, width: int = 12) -> table.Panel:
    query = tempo.TempoQuery().query_type("traceql").query(traceql).limit(20).datasource(TEMPO)
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .unit("none")
        .datasource(TEMPO)
        .span(width)
        .height(8)
    )
    _with_targets(panel, [query])
    return panel


def log_panel(title: str, description: str, logql: str, *, width: int = 12) -> logs.Panel:
    query = loki.Dataquery().expr(logql).datasource(LOKI)
    panel = (
        logs.Panel()
        .title(title)
        .description(description)
        .unit("none")
        .datasource(LOKI)
        .span(width)
        .height(8)
        .show_time(True)
        .enable_log_details(True)
        .wrap_log_message(True)
    )
    _with_targets(panel, [query])
    return panel


UP_DOWN = {"1": ("up", "green"), "0": ("down", "red")}


# --- Dashboard -----------------------------------------------------------------------------------


def new_dashboard(title: str, uid: str, description: str, tags: Sequence[str]) -> db.Dashboard:
    """A dashboard with the shared variables: data source, environment, service."""
    environment = (
        db.QueryVariable("environment")
        .label("Environment")
        .description("deployment.environment.name of the services")
        .datasource(PROMETHEUS)
        .query(f"label_values({APP_TARGETS}, deployment_environment_name)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )
    service = (
        db.QueryVariable("service")
        .label("Service")
        .description("service.name of the services in the chosen environments")
        .datasource(PROMETHEUS)
        .query(
            'label_values(target_info{telemetry_sdk_name!="", '
            'deployment_environment_name=~"$environment"}, job)'
        )
        .regex(SERVICE_FROM_JOB)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["otel-obs", *tags])
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(db.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(environment)
        .with_variable(service)
    )


def add_rows(dashboard: db.Dashboard, rows: Sequence[tuple[str, Sequence[object]]]) -> db.Dashboard:
    """Add each (row title, panels) in order."""
    for title, panels in rows:
        dashboard.with_row(db.Row(title))
        for panel in panels:
            dashboard.with_panel(panel)
    return dashboard
