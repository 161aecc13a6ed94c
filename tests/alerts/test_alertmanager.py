"""The shipped Alertmanager config: valid, routed by team and severity, secrets in files, and
end to end with real Prometheus and Alertmanager processes and a webhook on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from alert_servers import (
    ALERTMANAGER_CONFIG,
    RULES,
    free_port,
    start_alertmanager,
    start_prometheus,
    wait_until,
    webhook_variant,
)

pytestmark = pytest.mark.real


def amtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("amtool")
    if binary is None:
        pytest.skip("amtool is not installed (Debian package prometheus-alertmanager)")
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False, timeout=30)


def test_config_passes_amtool_check():
    result = amtool("check-config", str(ALERTMANAGER_CONFIG))

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (
            "alertname=HttpErrorRatioHigh severity=critical team=backend",
            "pagerduty-backend,slack-backend",
        ),
        ("alertname=HttpErrorRatioHigh severity=warning team=backend", "slack-backend"),
        ("alertname=AiTokenUsageSpike severity=warning team=ai", "slack-ai"),
        (
            "alertname=AiSpendOverHourlyBudget severity=critical team=ai",
            "email-ai-budget,pagerduty-ai,slack-ai",
        ),
        (
            "alertname=OtelCollectorDown severity=critical team=platform",
            "pagerduty-platform,slack-platform",
        ),
        ("alertname=Custom severity=info team=unknown", "email-platform"),
    ],
)
def test_routes_by_team_and_severity(labels, receivers):
    result = amtool(
        "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels.split()
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == receivers


def test_secrets_come_from_files_never_from_the_file_itself():
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    secret_keys = {
        "slack_api_url",
        "smtp_auth_password",
        "api_url",
        "routing_key",
        "service_key",
        "auth_password",
    }

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                assert key not in secret_keys, f"{key} written in the config; use {key}_file"
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(config)
    assert config["global"]["slack_api_url_file"].startswith("/etc/alertmanager/secrets/")
    assert config["global"]["smtp_auth_password_file"].startswith("/etc/alertmanager/secrets/")
    keys = [
        c["routing_key_file"] for r in config["receivers"] for c in r.get("pagerduty_configs", [])
    ]
    assert len(keys) == 3 and all(k.startswith("/etc/alertmanager/secrets/") for k in keys)


def test_the_webhook_variant_keeps_routes_and_inhibition(tmp_path):
    shipped = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    variant = webhook_variant("http://127.0.0.1:9/hook")
    path = tmp_path / "variant.yml"
    path.write_text(yaml.safe_dump(variant))

    assert variant["route"]["routes"] == shipped["route"]["routes"]
    assert variant["inhibit_rules"] == shipped["inhibit_rules"]
    assert [r["name"] for r in variant["receivers"]] == [r["name"] for r in shipped["receivers"]]
    assert amtool("check-config", str(path)).returncode == 0


class EmptyMetrics:
    """A scrape target with no series: Prometheus records up=1 for it, nothing else."""

    def __init__(self, port: int) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_collector_down_notifies_each_receiver_once_then_resolves(tmp_path, webhook):
    """Prometheus scrapes a Collector port where nothing listens: up == 0 fires the shipped
    OtelCollectorDown rule (its `for` set to 0 to keep the test short). Then something
    answers on that port, up == 1, and the alert resolves."""
    collector_port = free_port()
    alertmanager, alertmanager_url = start_alertmanager(
        webhook_variant(webhook.url), tmp_path / "am"
    )
    prometheus = None
    target = None
    try:
        prometheus, _ = start_prometheus(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "alerting": {
                    "alertmanagers": [{"static_configs": [{"targets": [alertmanager_url[7:]]}]}]
                },
                "scrape_configs": [
                    {
                        "job_name": "otelcol-self",
                        "static_configs": [{"targets": [f"127.0.0.1:{collector_port}"]}],
                    }
                ],
            },
            _without_for(yaml.safe_load(RULES.read_text())),
            tmp_path / "prom",
        )
        firing = wait_until(
            lambda: _notifications(webhook, "firing"), 45, "the firing notification"
        )
        # Both receivers of a critical platform alert, once each; nothing repeats while it fires.
        time.sleep(4)
        firing = _notifications(webhook, "firing")
        assert sorted(n["receiver"] for n in firing) == ["pagerduty-platform", "slack-platform"]
        for notification in firing:
            (alert,) = notification["alerts"]
            assert alert["labels"]["alertname"] == "OtelCollectorDown"
            assert alert["labels"]["severity"] == "critical"
            assert (
                alert["annotations"]["summary"]
                == f"Collector endpoint 127.0.0.1:{collector_port} is down"
            )

        target = EmptyMetrics(collector_port)
        resolved = wait_until(
            lambda: (
                len(_notifications(webhook, "resolved")) == 2
                and _notifications(webhook, "resolved")
            ),
            30,
            "the resolved notifications",
        )
        assert sorted(n["receiver"] for n in resolved) == ["pagerduty-platform", "slack-platform"]
        assert len(_notifications(webhook, "firing")) == 2
    finally:
        if target is not None:
            target.close()
        if prometheus is not None:
            prometheus.stop()
        alertmanager.stop()


def test_critical_inhibits_the_warning_of_the_same_alert_and_duplicates_are_merged(
    tmp_path, webhook
):
    alertmanager, url = start_alertmanager(webhook_variant(webhook.url), tmp_path / "am")
    try:
        service = {"service_name": "api", "deployment_environment_name": "prod", "team": "backend"}
        alerts = [
            {
                "labels": {"alertname": "HttpErrorRatioHigh", "severity": severity, **service},
                "annotations": {"summary": f"{severity} summary"},
            }
            for severity in ("warning", "critical")
        ]
        other = {
            "labels": {
                "alertname": "AiTokenUsageSpike",
                "severity": "warning",
                "team": "ai",
                "service_name": "worker",
                "deployment_environment_name": "prod",
            }
        }
        _post_alerts(url, alerts + [other])
        _post_alerts(url, alerts)  # Prometheus re-sends firing alerts; they are the same alerts.

        wait_until(lambda: len(webhook.received()) >= 3, 20, "three notifications")
        time.sleep(3)
        received = webhook.received()

        by_receiver = {n["receiver"]: n for n in received}
        assert sorted(n["receiver"] for n in received) == [
            "pagerduty-backend",
            "slack-ai",
            "slack-backend",
        ]
        for name in ("pagerduty-backend", "slack-backend"):
            severities = [a["labels"]["severity"] for a in by_receiver[name]["alerts"]]
            assert severities == ["critical"], f"{name} got {severities}: the warning is inhibited"
        assert [a["labels"]["alertname"] for a in by_receiver["slack-ai"]["alerts"]] == [
            "AiTokenUsageSpike"
        ]
    finally:
        alertmanager.stop()


def _without_for(document: dict) -> dict:
    for group in document["groups"]:
        for rule in group["rules"]:
            rule.pop("for", None)
    return document


def _notifications(webhook, status: str) -> list[dict]:
    return [n for n in webhook.received() if n["status"] == status]


def _post_alerts(alertmanager_url: str, alerts: list[dict]) -> None:
    request = urllib.request.Request(
        f"{alertmanager_url}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
