"""``otel-obs doctor`` and ``otel-obs config``: every finding at once, and the effective settings.

``doctor`` checks the variables, the files they name, and that each configured OTLP endpoint
accepts a real export (one empty span batch, metrics batch and log batch). It prints what it
checked and exits 2 on any error, 0 when healthy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from otel_obs.config import VARIABLES, Finding, Settings, load_settings, mask_header_values

OK, WARNING, ERROR = "ok", "warn", "error"
_SIGNALS = ("traces", "metrics", "logs")


def add_doctor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per endpoint check")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the settings as JSON")


def _standard_variables(environ: dict[str, str]) -> dict[str, str]:
    shown = {}
    for name in sorted(environ):
        if not name.startswith("OTEL_") or name.startswith("OTEL_OBS_"):
            continue
        value = environ[name]
        shown[name] = mask_header_values(value) if "HEADERS" in name else value
    return shown


def effective_config(settings: Settings, environ: dict[str, str]) -> dict[str, Any]:
    """Each setting with its value and source, plus the standard variables that are set."""
    out: dict[str, Any] = {"settings": {}, "standard": _standard_variables(environ)}
    for item in fields(Settings):
        if item.name == "sources":
            continue
        out["settings"][item.name] = {
            "value": getattr(settings, item.name),
            "source": settings.sources.get(item.name, "environment (OTEL_*)"),
        }
    for endpoint in endpoints(settings, environ).items():
        out.setdefault("endpoints", {})[endpoint[0]] = endpoint[1]
    return out


def run_config(args: argparse.Namespace) -> int:
    environ = dict(os.environ)
    settings, findings = load_settings(environ=environ)
    config = effective_config(settings, environ)
    if args.json:
        print(json.dumps(config, indent=2, default=str))
        return 0
    width = max(len(name) for name in config["settings"])
    for name, entry in config["settings"].items():
        print(f"{name:<{width}}  {entry['value']!s:<28} ({entry['source']})")
    for signal, url in config.get("endpoints", {}).items():
        print(f"{'endpoint.' + signal:<{width}}  {url}")
    for name, value in config["standard"].items():
        print(f"{name}={value}")
    for finding in findings:
        print(f"warning: {finding}", file=sys.stderr)
    return 0


def as_applied(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` with malformed standard values replaced, as ``configure()`` replaces them."""
    from otel_obs.config import standard_fixes

    fixed = dict(environ)
    for name, replacement, _ in standard_fixes(environ):
        if replacement is None:
            fixed.pop(name, None)
        else:
            fixed[name] = replacement
    return fixed


def endpoints(settings: Settings, environ: dict[str, str]) -> dict[str, str]:
    """The URL each signal is exported to, as the SDK's exporters resolve it."""
    environ = as_applied(environ)
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    out = {}
    for signal in _SIGNALS:
        explicit = environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
        protocol = environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL", settings.protocol)
        if explicit:
            out[signal] = explicit
        elif protocol == "grpc":
            out[signal] = base or "http://localhost:4317"
        else:
            out[signal] = f"{(base or 'http://localhost:4318').rstrip('/')}/v1/{signal}"
    return out


def _file_findings(settings: Settings) -> list[Finding]:
    findings = []
    for variable in VARIABLES:
        if variable.kind != "path" or variable.setting in ("stack_dir", "cache_dir"):
            continue
        path = getattr(settings, variable.setting)
        if path and not os.path.isfile(path):
            findings.append(Finding(variable.name, path, "no such file"))
    if settings.prices_file and os.path.isfile(settings.prices_file):
        findings.extend(_prices_findings(settings.prices_file))
    return findings


def _prices_findings(path: str) -> list[Finding]:
    try:
        from otel_obs.ai.pricing import check_prices_file
    except ImportError:
        return []
    return [
        Finding("OTEL_OBS_PRICES_FILE", path, str(problem)) for problem in check_prices_file(path)
    ]


def _probe(signal: str, settings: Settings, timeout: float) -> tuple[bool, str]:
    """Export one small batch of ``signal``; report whether the endpoint took it in time."""
    import logging
    import threading

    from otel_obs._exporters import otlp_exporter

    exporter = otlp_exporter(signal, settings)
    outcome: list[Any] = []
    # The exporter's retry warnings would repeat what the check reports once.
    logging.getLogger("opentelemetry.exporter").setLevel(logging.CRITICAL)
    worker = threading.Thread(target=lambda: outcome.append(_send(signal, exporter)), daemon=True)
    try:
        worker.start()
        worker.join(timeout)
    finally:
        exporter.shutdown()
    if not outcome:
        return False, f"no answer within {timeout:g} s"
    accepted, detail = outcome[0]
    return accepted, detail


def _send(signal: str, exporter: Any) -> tuple[bool, str]:
    try:
        accepted = _SENDERS[signal](exporter)
    except Exception as error:  # noqa: BLE001 (a probe reports, it does not raise)
        return False, f"{type(error).__name__}: {error}"
    if accepted:
        return True, "accepted an export"
    return False, "refused the export or could not be reached"


class _Capture:
    """An exporter that hands each batch to the real one and keeps the result."""

    def __init__(self, exporter: Any) -> None:
        self.exporter = exporter
        self.results: list[Any] = []

    def export(self, batch: Any) -> Any:
        self.results.append(self.exporter.export(batch))
        return self.results[-1]

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 0) -> bool:
        return True


def _send_span(exporter: Any) -> bool:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

    capture = _Capture(exporter)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(capture))
    provider.get_tracer("otel-obs doctor").start_span("otel-obs doctor").end()
    return capture.results[-1:] == [SpanExportResult.SUCCESS]


def _send_log(exporter: Any) -> bool:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import LogRecordExportResult, SimpleLogRecordProcessor

    capture = _Capture(exporter)
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(capture))
    provider.get_logger("otel-obs doctor").emit(body="otel-obs doctor")
    return capture.results[-1:] == [LogRecordExportResult.SUCCESS]


def _send_metric(exporter: Any) -> bool:
    from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData

    return exporter.export(MetricsData(resource_metrics=[])) == MetricExportResult.SUCCESS


_SENDERS = {"traces": _send_span, "metrics": _send_metric, "logs": _send_log}


def _check(name: str, status: str, detail: str, **extra: str) -> dict[str, str]:
    return {"check": name, "status": status, "detail": detail, **extra}


def _configuration_checks(settings: Settings, findings: list[Finding]) -> list[dict[str, str]]:
    checks = [
        _check(f"variable {f.variable}", ERROR, f.message, value=f.value)
        for f in findings + _file_findings(settings)
    ]
    if not checks:
        detail = f"{len(VARIABLES)} otel-obs variables and the OTEL_* values read are valid"
        checks.append(_check("configuration", OK, detail))
    return checks


def _distro_check(environ: dict[str, str]) -> list[dict[str, str]]:
    """Warn when another distro could be picked by plain ``opentelemetry-instrument``."""
    from importlib.metadata import entry_points

    others = sorted(
        ep.name for ep in entry_points(group="opentelemetry_distro") if ep.name != "otel_obs"
    )
    if not others:
        return []
    if environ.get("OTEL_PYTHON_DISTRO") == "otel_obs":
        return [_check("distro", OK, f"OTEL_PYTHON_DISTRO selects otel-obs over {others}")]
    detail = (
        f"also installed: distro {', '.join(others)}; plain opentelemetry-instrument may pick "
        "it instead of otel-obs. Use `otel-obs run`, or set OTEL_PYTHON_DISTRO=otel_obs and "
        "OTEL_PYTHON_CONFIGURATOR=otel_obs"
    )
    return [_check("distro", WARNING, detail)]


def _endpoint_checks(
    settings: Settings, environ: dict[str, str], timeout: float, probe: Callable[..., Any]
) -> list[dict[str, str]]:
    from otel_obs._exporters import exporter_names

    checks = []
    # The probes' exporters read the environment: give them the values the app would use.
    applied = as_applied(environ)
    for name in set(os.environ) - set(applied):
        if name in environ:
            os.environ.pop(name, None)
    os.environ.update({k: v for k, v in applied.items() if environ.get(k) != v})
    for signal, url in endpoints(settings, environ).items():
        if "otlp" not in exporter_names(signal):
            detail = f"OTEL_{signal.upper()}_EXPORTER chose no OTLP exporter: nothing to check"
            checks.append(_check(f"export {signal}", OK, detail))
            continue
        accepted, detail = probe(signal, settings, timeout)
        checks.append(_check(f"export {signal} to {url}", OK if accepted else ERROR, detail))
    return checks


def diagnose(
    environ: dict[str, str], timeout: float, probe: Callable[..., tuple[bool, str]] = _probe
) -> list[dict[str, str]]:
    """Every check with its status and detail, configuration first, then endpoints."""
    settings, findings = load_settings(environ=environ)
    checks = _configuration_checks(settings, findings) + _distro_check(environ)
    if settings.sdk_disabled:
        detail = "OTEL_SDK_DISABLED is true: nothing is exported"
        return checks + [_check("sdk", OK, detail)]
    return checks + _endpoint_checks(settings, environ, timeout, probe)


def run_doctor(args: argparse.Namespace) -> int:
    checks = diagnose(dict(os.environ), args.timeout)
    failed = [check for check in checks if check["status"] == ERROR]
    if args.json:
        print(json.dumps({"healthy": not failed, "checks": checks}, indent=2))
    else:
        for check in checks:
            value = f" (value {check['value']!r})" if "value" in check else ""
            print(f"[{check['status']:>5}] {check['check']}{value}: {check['detail']}")
        warned = sum(check["status"] == WARNING for check in checks)
        tail = f", {warned} warnings" if warned else ""
        print(f"{len(checks)} checks, {len(failed)} errors{tail}")
    return 2 if failed else 0
