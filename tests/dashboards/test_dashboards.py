"""The committed dashboards: generated from code, complete, and with sound PromQL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml

from dashboards import generate, lint, rules

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_FILES = sorted((ROOT / "dashboards").glob("*.json"))
PROVISIONED = ROOT / "collector" / "grafana" / "provisioning" / "datasources" / "datasources.yaml"
METRICS_DOC = ROOT / "collector" / "METRICS.md"
EXPECTED_UIDS = {
    "otel-obs-api-performance",
    "otel-obs-ai-costs",
    "otel-obs-business-kpis",
    "otel-obs-system-health",
}
# Windows a panel may use besides $__rate_interval: the dashboard's range, and the fixed
# windows that panel titles name ("last 24 h", "per hour").
ALLOWED_WINDOWS = {"$__rate_interval", "$__range", "24h", "1h", "1d:15s"}


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def all_panels(dashboard: dict) -> list[dict]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def data_panels(dashboard: dict) -> list[dict]:
    return [p for p in all_panels(dashboard) if p["type"] not in ("row", "text")]


def prometheus_targets(dashboard: dict) -> list[tuple[dict, dict]]:
    return [
        (panel, target)
        for panel in data_panels(dashboard)
        if panel.get("datasource", {}).get("type") == "prometheus"
        for target in panel.get("targets", [])
    ]


def every_expression() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel query and every rule."""
    found = [
        (f"{path.name}: {panel['title']} ({target['refId']})", target["expr"])
        for path in DASHBOARD_FILES
        for panel, target in prometheus_targets(load(path))
    ]
    document = yaml.safe_load(rules.RULES_FILE.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            found.append((f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]))
    return found


def test_there_are_four_dashboards_with_fixed_uids():
    assert {path.name for path in DASHBOARD_FILES} == set(generate.DASHBOARDS)
    assert {load(path)["uid"] for path in DASHBOARD_FILES} == EXPECTED_UIDS


def test_committed_files_match_the_code():
    stale = [
        str(path.relative_to(ROOT))
        for path, content in generate.rendered().items()
        if not path.exists() or path.read_text(encoding="utf-8") != content
    ]

    assert stale == [], "run `python -m dashboards.generate` and commit: stale " + ", ".join(stale)


def test_generate_check_reports_a_stale_file(tmp_path, monkeypatch, capsys):
    copy = tmp_path / "api-performance.json"
    copy.write_text("{}")
    monkeypatch.setattr(generate, "HERE", tmp_path)
    monkeypatch.setattr(generate, "rendered", lambda: {copy: '{"fresh": true}\n'})

    assert generate.main(["--check"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("stale: ") and out.rstrip().endswith("api-performance.json")
    assert copy.read_text() == "{}"  # --check writes nothing
    assert generate.main([]) == 0
    assert copy.read_text() == '{"fresh": true}\n'


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_shape(path):
    dashboard = load(path)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}

    assert "id" not in dashboard
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("service", "environment"):
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"
        assert variables[name]["datasource"]["uid"] == "${datasource}"
    assert [p for p in dashboard["panels"] if p["type"] == "row"], "rows group panels by concern"
    texts = [p for p in dashboard["panels"] if p["type"] == "text"]
    assert len(texts) == 1 and "answers" in texts[0]["title"]
    ids = [p["id"] for p in all_panels(dashboard)]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_every_panel_has_a_unit_a_one_line_description_and_links(path):
    for panel in data_panels(load(path)):
        title = panel["title"]
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults.get("unit"), f"{title}: no unit"
        description = panel.get("description", "")
        assert description and "\n" not in description, f"{title}: needs a one-line description"
        if panel["datasource"]["type"] != "prometheus":
            continue
        link_uids = {_link_datasource(link["url"]) for link in defaults.get("links", [])}
        assert link_uids == {"tempo", "loki"}, f"{title}: links to traces and logs, got {link_uids}"


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_latency_graphs_show_exemplars(path):
    # Graphs over time: a stat or a table has nowhere to draw an exemplar.
    for panel, target in prometheus_targets(load(path)):
        is_latency = (
            panel["type"] in ("timeseries", "heatmap")
            and panel["fieldConfig"]["defaults"]["unit"] == "s"
            and ("histogram_quantile" in target["expr"] or panel["type"] == "heatmap")
        )
        if is_latency:
            assert target.get("exemplar") is True, f"{panel['title']}: exemplars off"


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_queries_filter_by_service_and_use_the_rate_interval(path):
    for panel, target in prometheus_targets(load(path)):
        expr = target["expr"]
        where = f"{panel['title']}: {expr}"
        # The Collector's own metrics belong to no service.
        if "otelcol_" not in expr:
            assert "$service" in expr and "$environment" in expr, where
        for window in re.findall(r"\[([^\]]+)\]", expr):
            assert window in ALLOWED_WINDOWS, f"{where}: window [{window}]"


def test_every_histogram_quantile_sums_rated_buckets_by_le():
    problems = [
        f"{where}: {p}" for where, expr in every_expression() for p in lint.quantile_problems(expr)
    ]

    assert problems == []


def test_no_query_reads_a_histogram_by_its_base_name():
    expressions = every_expression()
    names = set().union(*(lint.metric_names(expr) for _, expr in expressions))
    documented = set(re.findall(r"`([a-z_:][a-z0-9_:]*)`", METRICS_DOC.read_text()))
    histograms = lint.histogram_bases(names | documented)

    bare = [
        f"{where}: {sorted(found)}"
        for where, expr in expressions
        if (found := lint.bare_histogram_names(expr, histograms))
    ]

    assert histograms >= {"http_server_request_duration_seconds", "gen_ai_client_token_usage"}
    assert bare == []


def test_the_linter_catches_the_field_mistakes():
    assert lint.quantile_problems("histogram_quantile(0.9, rate(x_bucket[5m]))")
    assert lint.quantile_problems("histogram_quantile(0.9, sum by (job) (rate(x_bucket[5m])))")
    assert lint.quantile_problems("histogram_quantile(0.9, sum by (le) (x_bucket))")
    assert lint.quantile_problems(
        "histogram_quantile(0.9, sum by (le) (max by (le) (rate(x_bucket[5m]))))"
    )
    assert not lint.quantile_problems(
        "histogram_quantile(0.9, sum by (le, job) (rate(x_bucket[5m])))"
    )
    assert lint.bare_histogram_names("rate(x_sum[5m]) / rate(x[5m])", {"x"}) == {"x"}


def test_every_datasource_uid_is_provisioned():
    provisioned = {d["uid"] for d in yaml.safe_load(PROVISIONED.read_text())["datasources"]}
    referenced: dict[str, set[str]] = {}
    for path in DASHBOARD_FILES:
        dashboard = load(path)
        for panel in all_panels(dashboard):
            for ref in [panel.get("datasource")] + [
                t.get("datasource") for t in panel.get("targets", [])
            ]:
                if ref and not ref["uid"].startswith("$"):
                    referenced.setdefault(ref["uid"], set()).add(f"{path.name}: {panel['title']}")
            for link in panel.get("fieldConfig", {}).get("defaults", {}).get("links", []):
                referenced.setdefault(_link_datasource(link["url"]), set()).add(
                    f"{path.name}: link"
                )

    assert set(referenced) <= provisioned, {
        uid: referenced[uid] for uid in set(referenced) - provisioned
    }
    assert {"tempo", "loki"} <= set(referenced)


def _link_datasource(url: str) -> str:
    """The data source uid an Explore link opens."""
    panes = parse_qs(urlsplit(url).query)["panes"][0]
    # Grafana fills ${...} before opening; any JSON string stands in for them here.
    decoded = re.sub(r"\$\{[^}]*\}", "x", unquote(panes))
    return json.loads(decoded)["otel"]["datasource"]
