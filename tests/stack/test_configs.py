"""The shipped stack files: valid for their own tools, pinned, and safe by construction."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from otel_obs.stack import COLLECTOR_DIR, Ports, Stack

from .catalog import CATALOG, semconv_metric_names

MAIN = COLLECTOR_DIR / "otelcol-obs.yaml"
OVERLAYS = sorted((COLLECTOR_DIR / "overlays").glob("*.yaml"))
COMPOSE = COLLECTOR_DIR / "docker-compose.yaml"
OVERLAY_ENV = {
    "OTEL_OBS_COLLECTOR_INGEST_TOKEN": "token",
    "OTEL_OBS_COLLECTOR_TLS_CERT_FILE": "/etc/otel-obs/tls/cert.pem",
    "OTEL_OBS_COLLECTOR_TLS_KEY_FILE": "/etc/otel-obs/tls/key.pem",
}
LOW_CARDINALITY_LABELS = {
    "service.name",
    "service.namespace",
    "deployment.environment",
    "deployment.environment.name",
}


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _merged(*paths: Path) -> dict:
    """Merge configs the way the Collector does: maps merge, lists and scalars replace."""

    def merge(base, extra):
        if isinstance(base, dict) and isinstance(extra, dict):
            return {k: merge(base[k], v) if k in base else v for k, v in {**base, **extra}.items()}
        return extra

    result: dict = {}
    for path in paths:
        result = merge(result, _load(path))
    return result


CONFIG_SETS = [[MAIN]] + [
    [MAIN, *combo] for n in (1, 2) for combo in itertools.combinations(OVERLAYS, n)
]


# --- Collector ------------------------------------------------------------------------


@pytest.mark.parametrize("configs", CONFIG_SETS, ids=lambda c: "+".join(p.stem for p in c))
def test_otelcol_obs_validates_every_shipped_config_and_overlay_combination(otelcol, configs):
    command = [str(otelcol), "validate"] + [f"--config={path}" for path in configs]

    result = subprocess.run(
        command, check=False, capture_output=True, text=True, env={**os.environ, **OVERLAY_ENV}
    )

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("configs", CONFIG_SETS, ids=lambda c: "+".join(p.stem for p in c))
def test_every_pipeline_starts_with_the_memory_limiter(configs):
    pipelines = _merged(*configs)["service"]["pipelines"]

    assert {name: p["processors"][0] for name, p in pipelines.items()} == {
        name: "memory_limiter" for name in pipelines
    }


def test_transform_processors_set_error_mode_ignore_explicitly():
    processors = _load(MAIN)["processors"]
    transforms = {name: p for name, p in processors.items() if name.split("/")[0] == "transform"}

    assert transforms, "the masking transform processor is missing"
    for name, config in transforms.items():
        assert config.get("error_mode") == "ignore", name
        groups = [g for key, v in config.items() if key.endswith("_statements") for g in v]
        assert all(
            isinstance(g, str) or g.get("error_mode", "ignore") == "ignore" for g in groups
        ), name


def test_traces_and_logs_leave_through_a_persistent_queue_and_no_batch_processor():
    config = _load(MAIN)
    pipelines = config["service"]["pipelines"]

    for signal in ("traces", "logs"):
        assert not any(p.split("/")[0] == "batch" for p in pipelines[signal]["processors"]), signal
        for exporter in pipelines[signal]["exporters"]:
            queue = config["exporters"][exporter]["sending_queue"]
            assert queue["storage"] in config["service"]["extensions"]
            assert config["exporters"][exporter]["retry_on_failure"]["enabled"] is True


def test_every_endpoint_and_path_comes_from_the_environment():
    text = MAIN.read_text()
    literal = re.findall(
        r"^\s*(?:endpoint|directory|host|port):[ \t]+(?![ \t]|\$\{env:)(.+)$", text, re.MULTILINE
    )

    assert literal == []


def test_the_build_manifest_has_exactly_the_components_the_configs_use(otelcol):
    used: dict[str, set[str]] = {}
    for path in [MAIN, *OVERLAYS]:
        config = _load(path)
        for kind in ("receivers", "processors", "exporters", "extensions"):
            used.setdefault(kind, set()).update(
                name.split("/")[0] for name in config.get(kind) or {}
            )

    listed = yaml.safe_load(
        subprocess.run(
            [str(otelcol), "components"], capture_output=True, text=True, check=True
        ).stdout
    )
    built = {kind: {c["name"] for c in listed.get(kind) or []} for kind in used}

    assert built == used


def test_every_collector_module_is_at_one_release():
    manifest = _load(COLLECTOR_DIR / "builder-config.yaml")
    versions = {
        entry["gomod"].split()[1]
        for kind in ("receivers", "processors", "exporters", "extensions", "providers")
        for entry in manifest[kind]
    }

    assert versions <= {"v0.161.0", "v1.67.0"}


def test_build_script_reuses_the_cached_binary(otelcol):
    result = subprocess.run(
        [str(COLLECTOR_DIR / "build.sh")], capture_output=True, text=True, timeout=60, check=True
    )

    assert Path(result.stdout.strip()) == otelcol
    assert "cached" in result.stderr


# --- Prometheus -------------------------------------------------------------------------


def test_promtool_accepts_the_shipped_and_the_native_prometheus_config(tmp_path):
    stack = Stack(tmp_path, Ports.free())
    stack._prepare_directory()
    native = stack._render_prometheus_config()

    for path in (COLLECTOR_DIR / "prometheus" / "prometheus.yml", native):
        result = subprocess.run(
            ["promtool", "check", "config", str(path)], check=False, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_the_collector_exporter_and_its_own_metrics():
    config = _load(COLLECTOR_DIR / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}

    assert jobs["otelcol"]["honor_labels"] is True
    assert jobs["otelcol"]["static_configs"][0]["targets"] == ["otelcol:8889"]
    assert jobs["otelcol-self"]["static_configs"][0]["targets"] == ["otelcol:8888"]
    assert config["rule_files"] == ["../rules/*.yml"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"
    ]


# --- docker-compose -------------------------------------------------------------------------


def _compose() -> dict:
    return _load(COMPOSE)


def test_compose_pins_every_image():
    images = [s["image"] for s in _compose()["services"].values() if "image" in s]
    froms = re.findall(r"^FROM\s+(\S+)", (COLLECTOR_DIR / "Dockerfile").read_text(), re.MULTILINE)

    unpinned = [
        image
        for image in images + froms
        if ":" not in image.rsplit("/", 1)[-1]
        or not re.search(r":v?\d+(\.\d+)+", image)
        or image.endswith(":latest")
    ]
    assert images and froms and unpinned == []


def test_compose_runs_prometheus_3_with_30_days_of_retention():
    prometheus = _compose()["services"]["prometheus"]

    assert re.fullmatch(r"prom/prometheus:v3\.\d+\.\d+", prometheus["image"])
    assert "--storage.tsdb.retention.time=${PROMETHEUS_RETENTION:-30d}" in prometheus["command"]
    assert Stack(retention="30d").retention == Stack().retention == "30d"


def test_grafana_admin_password_is_required_from_the_environment():
    grafana = _compose()["services"]["grafana"]["environment"]

    assert grafana["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GF_SECURITY_ADMIN_PASSWORD:?")
    assert (
        "admin"
        not in COMPOSE.read_text()
        .split("GF_SECURITY_ADMIN_PASSWORD:", 1)[1]
        .split("\n")[0]
        .split(":?")[0]
    )


def test_compose_publishes_ports_on_loopback_only():
    published = [p for s in _compose()["services"].values() for p in s.get("ports", [])]

    assert published and all(p.startswith("127.0.0.1:") for p in published)


def test_compose_mounts_only_files_that_exist():
    missing = []
    for name, service in _compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                path = (COLLECTOR_DIR / source).resolve()
                if not path.exists():
                    missing.append(f"{name}: {source}")
    # rules/ and alertmanager/ hold the alert rules and routing; an empty rules/ is valid.
    missing = [m for m in missing if not m.endswith("./rules")]

    assert missing == []


def test_compose_points_the_collector_at_tempo_and_loki():
    env = _compose()["services"]["otelcol"]["environment"]

    assert env["OTEL_OBS_COLLECTOR_TEMPO_ENDPOINT"] == "tempo:4317"
    assert env["OTEL_OBS_COLLECTOR_LOKI_ENDPOINT"] == "http://loki:3100/otlp"
    assert env["OTEL_OBS_COLLECTOR_GRPC_ENDPOINT"] == "0.0.0.0:4317"


# --- Loki, Tempo, Grafana -----------------------------------------------------------------


def _loki_labels(limits: dict) -> tuple[bool, set[str]]:
    otlp_config = limits["otlp_config"]
    resource = otlp_config["resource_attributes"]
    labels = {
        name
        for rule in resource["attributes_config"]
        if rule["action"] == "index_label"
        for name in rule["attributes"]
    }
    for scope in ("scope_attributes", "log_attributes"):
        assert not any(rule.get("action") == "index_label" for rule in otlp_config.get(scope, []))
    return resource["ignore_defaults"], labels


@pytest.mark.parametrize("where", ["loki.yaml", "helm"])
def test_loki_stream_labels_are_an_allowlist_of_low_cardinality_keys(where):
    if where == "helm":
        documents = list(
            yaml.safe_load_all((COLLECTOR_DIR / "helm" / "backends-values.yaml").read_text())
        )
        limits = next(d for d in documents if d and "deploymentMode" in d)["loki"]["limits_config"]
    else:
        limits = _load(COLLECTOR_DIR / "loki" / "loki.yaml")["limits_config"]

    ignore_defaults, labels = _loki_labels(limits)

    assert ignore_defaults is True
    assert labels and labels <= LOW_CARDINALITY_LABELS
    assert limits["allow_structured_metadata"] is True


def test_loki_keeps_logs_30_days_and_tempo_14_days():
    loki = _load(COLLECTOR_DIR / "loki" / "loki.yaml")
    tempo = _load(COLLECTOR_DIR / "tempo" / "tempo.yaml")

    assert loki["limits_config"]["retention_period"] == "720h"
    assert loki["compactor"]["retention_enabled"] is True
    assert tempo["compactor"]["compaction"]["block_retention"] == "336h"


def test_tempo_generates_service_graph_and_span_metrics_into_prometheus():
    tempo = _load(COLLECTOR_DIR / "tempo" / "tempo.yaml")
    processors = tempo["overrides"]["defaults"]["metrics_generator"]["processors"]

    assert {"service-graphs", "span-metrics"} <= set(processors)
    assert (
        tempo["metrics_generator"]["storage"]["remote_write"][0]["url"]
        == "http://prometheus:9090/api/v1/write"
    )
    assert (
        tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == "0.0.0.0:4317"
    )


def test_grafana_datasources_link_metrics_traces_and_logs():
    sources = _load(COLLECTOR_DIR / "grafana" / "provisioning" / "datasources" / "datasources.yaml")
    by_uid = {s["uid"]: s for s in sources["datasources"]}
    tempo = by_uid["tempo"]["jsonData"]

    assert set(by_uid) == {"prometheus", "tempo", "loki", "alertmanager"}
    assert (
        by_uid["prometheus"]["jsonData"]["exemplarTraceIdDestinations"][0]["datasourceUid"]
        == "tempo"
    )
    assert tempo["tracesToLogsV2"]["datasourceUid"] == "loki"
    assert tempo["tracesToMetrics"]["datasourceUid"] == "prometheus"
    assert tempo["serviceMap"]["datasourceUid"] == "prometheus"
    derived = by_uid["loki"]["jsonData"]["derivedFields"][0]
    assert (derived["matcherRegex"], derived["datasourceUid"]) == ("trace_id", "tempo")


def test_grafana_loads_dashboards_from_the_repository_folder():
    provider = _load(COLLECTOR_DIR / "grafana" / "provisioning" / "dashboards" / "dashboards.yaml")
    mounts = _compose()["services"]["grafana"]["volumes"]

    path = provider["providers"][0]["options"]["path"]
    assert f"../dashboards:{path}:ro" in mounts


# --- metric names ---------------------------------------------------------------------------


def test_catalog_covers_every_metric_in_semconv():
    assert semconv_metric_names() <= {metric.name for metric in CATALOG}


def test_no_documented_prometheus_name_has_a_doubled_suffix():
    doubled = [
        name
        for metric in CATALOG
        for name in metric.series
        if re.search(r"_(seconds|total|USD|ratio|bytes)_\1(_|$)", name)
    ]

    assert doubled == []


def test_metrics_md_lists_the_catalog():
    text = (COLLECTOR_DIR / "METRICS.md").read_text()
    rows = re.findall(r"^\| `([^`]+)` \| ([\w-]+) \| `([^`]+)` \| (.+) \|$", text, re.MULTILINE)
    documented = {
        (name, kind, unit, tuple(re.findall(r"`([^`]+)`", series)))
        for name, kind, unit, series in rows
    }

    assert documented == {
        (m.name, m.instrument.replace("_", "-"), m.unit, m.series) for m in CATALOG
    }
