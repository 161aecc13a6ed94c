"""The alert rules: valid, unit-tested with promtool, complete, and driven by the thresholds."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from dashboards import lint, rules

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RUNBOOK = ROOT / "docs" / "runbook.md"
TEST_FILES = sorted(HERE.glob("*.test.yml"))
# Alerts whose value is a constant (up == 0, a present/absent marker), so the live value
# says nothing; their text names the job or instance instead.
VALUE_FREE = {"ServiceAbsent", "OtelCollectorDown"}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    return found


def rule_list(path: Path = rules.RULES_FILE) -> list[dict]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def alerts() -> list[dict]:
    return [rule for rule in rule_list() if "alert" in rule]


def test_rule_file_passes_promtool_check():
    result = subprocess.run(
        [promtool(), "check", "rules", str(rules.RULES_FILE)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(path):
    result = subprocess.run(
        [promtool(), "test", "rules", path.name],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_cases_that_fire_and_cases_that_stay_silent():
    fires, silent = set(), set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}

    assert names - fires == set(), "alerts never tested firing"
    assert names - silent == set(), "alerts never tested staying silent"


def test_alerts_carry_routing_labels_and_texts_with_the_live_value():
    teams = set(rules.load_thresholds()["teams"].values())
    for rule in alerts():
        name, labels, notes = rule["alert"], rule["labels"], rule["annotations"]
        assert labels["severity"] in ("critical", "warning"), name
        assert labels["team"] in teams, name
        assert set(notes) == {"summary", "description", "runbook_url"}, name
        assert "\n" not in notes["summary"], name
        if name not in VALUE_FREE:
            assert "$value" in notes["summary"] and "$value" in notes["description"], name


def test_every_runbook_link_points_to_a_section():
    anchors = {
        heading.strip().lower().replace(" ", "-")
        for heading in re.findall(r"^## (.+)$", RUNBOOK.read_text(), re.MULTILINE)
    }
    for rule in alerts():
        url = rule["annotations"]["runbook_url"]
        assert url.split("#")[0].endswith("docs/runbook.md"), url
        assert url.split("#")[1] in anchors, f"{rule['alert']}: no section {url}"


def test_rule_ratios_cannot_divide_by_zero():
    for rule in rule_list():
        expr = rule["expr"]
        for divisor in re.findall(r"/\s*([a-z_]+\()", expr):
            assert divisor == "clamp_min(", f"{rule.get('alert') or rule.get('record')}: {expr}"


def test_histogram_quantiles_in_rules_sum_rated_buckets_by_le():
    problems = [p for rule in rule_list() for p in lint.quantile_problems(rule["expr"])]

    assert problems == []


def test_rule_file_is_the_rendering_of_the_thresholds():
    assert rules.RULES_FILE.read_text() == rules.render(rules.load_thresholds())


def test_changing_a_threshold_changes_when_an_alert_fires(tmp_path):
    thresholds = rules.load_thresholds()
    thresholds["ai"]["hourly_budget_usd"] = 50
    thresholds["services"]["expected"] = ["billing"]
    (tmp_path / "rules.yml").write_text(rules.render(thresholds))
    (tmp_path / "variant.test.yml").write_text(_VARIANT_TESTS)

    result = subprocess.run(
        [promtool(), "test", "rules", "variant.test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_a_latency_objective_off_the_bucket_bounds_is_refused(tmp_path):
    path = tmp_path / "thresholds.yaml"
    thresholds = rules.load_thresholds()
    thresholds["http"]["slo_latency_seconds"] = 0.3
    path.write_text(yaml.safe_dump(thresholds))

    with pytest.raises(ValueError, match=r"slo_latency_seconds = 0.3 .* 0.25, 0.5"):
        rules.load_thresholds(path)


# 30 USD an hour is under a 50 USD budget; "billing" never reported but is expected.
_VARIANT_TESTS = """
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'gen_ai_client_cost_USD_total{deployment_environment_name="prod"}'
        values: '0+0.5x70'
      - series: 'target_info{job="shop/api", instance="i-1", telemetry_sdk_name="opentelemetry"}'
        values: '1x70'
    alert_rule_test:
      - eval_time: 60m
        alertname: AiSpendOverHourlyBudget
        exp_alerts: []
      - eval_time: 60m
        alertname: ServiceAbsent
        exp_alerts:
          - exp_labels: {severity: critical, team: platform, service_name: billing}
            exp_annotations:
              summary: billing sends no telemetry
              description: >-
                billing is listed as a service that must always report, and no telemetry
                of it reaches Prometheus.
              runbook_url: docs/runbook.md#serviceabsent
"""
