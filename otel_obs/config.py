"""Settings read once from the environment, validated, and immutable afterwards.

Our own variables start with ``OTEL_OBS_`` and are declared once, in ``VARIABLES``; the
README's table is generated from it (``python -m otel_obs.config --markdown``) and a test
keeps the two in step. Standard ``OTEL_*`` variables keep the meaning the SDK documents:
we only check the ones whose bad values would otherwise fail late or silently, and replace
a malformed value by the safe default, with one warning that names the variable, the value
and what is accepted.
"""

from __future__ import annotations

import difflib
import math
import os
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, urlparse

from otel_obs._diag import diag_logger

PREFIX = "OTEL_OBS_"

DEFAULT = "default"
ENVIRONMENT = "environment"
ARGUMENT = "argument"


@dataclass(frozen=True)
class Variable:
    """One ``OTEL_OBS_*`` variable: its setting, type, default and what it accepts."""

    name: str
    setting: str
    kind: str  # bool, float, str, choice, path
    default: Any
    doc: str
    choices: tuple[str, ...] = ()

    @property
    def accepted(self) -> str:
        if self.kind == "bool":
            return "true or false"
        if self.kind == "float":
            return "a number of seconds, 0 or more"
        if self.kind == "choice":
            return " or ".join(self.choices)
        if self.kind == "path":
            return "a file or folder path"
        return "any text"


def _home_cache() -> str:
    return os.path.join(os.path.expanduser("~"), ".cache", "otel-obs")


VARIABLES: tuple[Variable, ...] = (
    Variable("OTEL_OBS_SHUTDOWN_TIMEOUT", "shutdown_timeout", "float", 5.0,
             "Seconds that shutdown, including the final flush, may take in all."),
    Variable("OTEL_OBS_LOG_FORMAT", "log_format", "choice", "json",
             "How log records are written to stdout.", ("json", "console")),
    Variable("OTEL_OBS_LOG_LEVEL", "log_level", "choice", "INFO",
             "Lowest level of the records otel-obs handles.",
             ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")),
    Variable("OTEL_OBS_LOG_STDOUT", "log_stdout", "bool", True,
             "Write log records to stdout (as well as exporting them over OTLP)."),
    Variable("OTEL_OBS_REDACT", "redact", "bool", True,
             "Mask secrets and personal data in logs, spans and GenAI content."),
    Variable("OTEL_OBS_REDACT_RULES_FILE", "redact_rules_file", "path", None,
             "YAML or JSON file with extra masking patterns and an allow-list."),
    Variable("OTEL_OBS_PRICES_FILE", "prices_file", "path", None,
             "YAML or JSON file of model prices that override the bundled ones."),
    Variable("OTEL_OBS_AI_INSTRUMENTATION", "ai_instrumentation", "bool", True,
             "Instrument the installed OpenAI, Anthropic and Google GenAI clients."),
    Variable("OTEL_OBS_SYSTEM_METRICS", "system_metrics", "bool", True,
             "Export CPU, memory, GC, thread and open-file metrics of the process."),
    Variable("OTEL_OBS_STACK_DIR", "stack_dir", "path", os.path.join(".otel-obs", "stack"),
             "Where `otel-obs stack` keeps the local backends' data, logs and pid files."),
    Variable("OTEL_OBS_CACHE_DIR", "cache_dir", "path", None,
             "Cache for built binaries such as otelcol-obs (default ~/.cache/otel-obs)."),
    Variable("OTEL_OBS_RAISE_INTERNAL_ERRORS", "raise_internal_errors", "bool", False,
             "Raise errors of telemetry code instead of logging them: for test suites."),
)

# Names read by other parts of otel-obs that are not settings of the SDK: the Collector
# config's own variables and the switch our test suite uses.
KNOWN_PREFIXES = ("OTEL_OBS_COLLECTOR_",)
KNOWN_EXTRA = ("OTEL_OBS_FORCE_BUILD", "OTEL_OBS_DASHBOARD_WORKLOAD")

_BY_NAME = {variable.name: variable for variable in VARIABLES}
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


@dataclass(frozen=True)
class Finding:
    """One problem found in the configuration."""

    variable: str
    value: str
    message: str
    severity: str = "error"  # error: a value was replaced; warning: suspicious only

    def __str__(self) -> str:
        return f"{self.variable}={self.value!r}: {self.message}"


@dataclass(frozen=True)
class Settings:
    """The effective configuration of one process."""

    service_name: str = "unknown_service"
    service_version: str = "unknown"
    environment: str = "development"
    sdk_disabled: bool = False
    protocol: str = "http/protobuf"
    shutdown_timeout: float = 5.0
    log_format: str = "json"
    log_level: str = "INFO"
    log_stdout: bool = True
    redact: bool = True
    redact_rules_file: str | None = None
    prices_file: str | None = None
    ai_instrumentation: bool = True
    capture_message_content: bool = False
    system_metrics: bool = True
    stack_dir: str = os.path.join(".otel-obs", "stack")
    cache_dir: str = field(default_factory=_home_cache)
    raise_internal_errors: bool = False
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


# --- parsing of our own variables ------------------------------------------------------


def _parse(variable: Variable, raw: str) -> tuple[Any, str | None]:
    """Return the parsed value, or the default and the reason the value was refused."""
    value = raw.strip()
    if variable.kind == "bool":
        if value.lower() in _TRUE:
            return True, None
        if value.lower() in _FALSE:
            return False, None
    elif variable.kind == "float":
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if number >= 0 and math.isfinite(number):
            return number, None
    elif variable.kind == "choice":
        for choice in variable.choices:
            if value.lower() == choice.lower():
                return choice, None
    elif value:
        return value, None
    return variable.default, f"accepted: {variable.accepted}; using {variable.default!r}"


def _parse_override(variable: Variable, value: Any) -> tuple[Any, str | None]:
    if isinstance(value, str):
        return _parse(variable, value)
    if variable.kind == "bool" and isinstance(value, bool):
        return value, None
    if variable.kind == "float" and isinstance(value, (int, float)) and value >= 0:
        return float(value), None
    if variable.kind in ("path", "str") and value is None:
        return None, None
    return _parse(variable, str(value))


def _unknown_names(environ: Mapping[str, str]) -> list[Finding]:
    findings = []
    for name in sorted(environ):
        if not name.startswith(PREFIX) or name in _BY_NAME or name in KNOWN_EXTRA:
            continue
        if name.startswith(KNOWN_PREFIXES):
            continue
        close = difflib.get_close_matches(name, list(_BY_NAME), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else "see `otel-obs config` for the list"
        findings.append(Finding(name, environ[name], f"unknown otel-obs variable; {hint}"))
    return findings


# --- checks of standard OTEL_* variables -----------------------------------------------

_PROTOCOLS = ("http/protobuf", "grpc")  # the Python exporters speak no http/json
_SIGNALS = ("TRACES", "METRICS", "LOGS")
_RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")
BUILTIN_SAMPLERS = (
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
    "always_on",
    "always_off",
    "traceidratio",
)
_INTERVAL_VARIABLES = (
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_EXPORT_TIMEOUT",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BLRP_SCHEDULE_DELAY",
    "OTEL_BLRP_EXPORT_TIMEOUT",
    "OTEL_BLRP_MAX_QUEUE_SIZE",
    "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_METRIC_EXPORT_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    *(f"OTEL_EXPORTER_OTLP_{signal}_TIMEOUT" for signal in _SIGNALS),
)


def _per_signal(template: str) -> tuple[str, ...]:
    """The general variable and its per-signal ones: ``OTEL_EXPORTER_OTLP_{}ENDPOINT``."""
    return (template.format(""), *(template.format(f"{signal}_") for signal in _SIGNALS))


def _check_protocol(environ: Mapping[str, str]) -> list[tuple[str, str | None, str]]:
    fixes = []
    for name in _per_signal("OTEL_EXPORTER_OTLP_{}PROTOCOL"):
        value = environ.get(name)
        if value is not None and value.strip() not in _PROTOCOLS:
            fixes.append((name, None, f"accepted: {', '.join(_PROTOCOLS)}; using http/protobuf"))
    return fixes


def _check_endpoints(environ: Mapping[str, str]) -> list[tuple[str, str | None, str]]:
    fixes = []
    for name in _per_signal("OTEL_EXPORTER_OTLP_{}ENDPOINT"):
        value = environ.get(name)
        if value is None:
            continue
        parsed = urlparse(value.strip())
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            message = (
                "accepted: a URL with http:// or https:// and a host; using the default endpoint"
            )
            fixes.append((name, None, message))
    return fixes


def _check_pairs(name: str, value: str) -> tuple[str, list[str]]:
    """Keep the well-formed ``key=value`` pairs of a comma list; return them and the bad ones."""
    good, bad = [], []
    for item in value.split(","):
        if not item.strip():
            continue
        key, sep, _ = item.partition("=")
        if sep and key.strip() and unquote(key.strip()) == unquote(key.strip()).strip():
            good.append(item.strip())
        else:
            bad.append(item.strip())
    return ",".join(good), bad


def mask_header_values(value: str) -> str:
    """Keep the header names of a ``key=value`` list, hide the values (they hold secrets)."""
    masked = []
    for item in value.split(","):
        key, sep, _ = item.partition("=")
        masked.append(f"{key.strip()}=***" if sep else item)
    return ",".join(masked)


def _shown_value(name: str, value: str) -> str:
    return mask_header_values(value) if name.endswith("_HEADERS") else value


def _check_key_value_lists(environ: Mapping[str, str]) -> list[tuple[str, str | None, str]]:
    fixes = []
    names = ("OTEL_RESOURCE_ATTRIBUTES", "OTEL_EXPORTER_OTLP_HEADERS",
             *(f"OTEL_EXPORTER_OTLP_{s}_HEADERS" for s in _SIGNALS))
    for name in names:
        value = environ.get(name)
        if value is None:
            continue
        kept, bad = _check_pairs(name, value)
        if bad:
            entries = "entry" if len(bad) == 1 else "entries"
            message = (
                f"accepted: comma-separated key=value pairs; dropped {len(bad)} malformed {entries}"
            )
            fixes.append((name, kept or None, message))
    return fixes


def _check_sampler(environ: Mapping[str, str]) -> list[tuple[str, str | None, str]]:
    sampler = environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    value = environ.get("OTEL_TRACES_SAMPLER_ARG")
    if value is None or sampler not in _RATIO_SAMPLERS:
        return []
    try:
        ratio = float(value)
    except ValueError:
        ratio = -1.0
    if 0.0 <= ratio <= 1.0:
        return []
    return [("OTEL_TRACES_SAMPLER_ARG", "1.0", "accepted: a number from 0 to 1; using 1.0")]


def _check_sampler_name(environ: Mapping[str, str]) -> list[tuple[str, str | None, str]]:
    value = environ.get("OTEL_TRACES_SAMPLER")
    if value is None or value.strip().lower() in BUILTIN_SAMPLERS:
        return []
    if is_sampler_entry_point(value.strip()):
        return []
    accepted = ", ".join(BUILTIN_SAMPLERS)
    message = (
        f"accepted: {accepted} or the name of an installed sampler entry point; "
        "using parentbased_always_on"
    )
    return [("OTEL_TRACES_SAMPLER", None, message)]


def is_sampler_entry_point(name: str) -> bool:
    """Whether an installed package offers a sampler called ``name``."""
    from importlib.metadata import entry_points

    return bool(entry_points(group="opentelemetry_traces_sampler", name=name))


def _check_intervals(environ: Mapping[str, str]) -> list[tuple[str, str | None, str]]:
    fixes = []
    for name in _INTERVAL_VARIABLES:
        value = environ.get(name)
        if value is None:
            continue
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if number < 0 or math.isnan(number):
            fixes.append((name, None, "accepted: a whole number 0 or more; using the SDK default"))
    return fixes


def _check_exporters(environ: Mapping[str, str]) -> list[tuple[str, str | None, str]]:
    fixes = []
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER"):
        value = environ.get(name)
        if value is None:
            continue
        chosen = [part.strip().lower() for part in value.split(",") if part.strip()]
        kept = [part for part in chosen if part in ("otlp", "console", "none")]
        if kept != chosen or not chosen:
            using = ",".join(kept) or "otlp"
            message = f"accepted: otlp, console or none (comma-separated); using {using}"
            fixes.append((name, ",".join(kept) or None, message))
    return fixes


_STANDARD_CHECKS: tuple[Callable[[Mapping[str, str]], list[tuple[str, str | None, str]]], ...] = (
    _check_protocol,
    _check_endpoints,
    _check_key_value_lists,
    _check_sampler_name,
    _check_sampler,
    _check_intervals,
    _check_exporters,
)


def standard_fixes(environ: Mapping[str, str]) -> list[tuple[str, str | None, str]]:
    """Return ``(variable, replacement or None to unset, message)`` for bad OTEL_* values."""
    fixes = []
    for check in _STANDARD_CHECKS:
        fixes.extend(check(environ))
    return fixes


# --- loading ---------------------------------------------------------------------------


def _resource_value(environ: Mapping[str, str], key: str) -> str | None:
    kept, _ = _check_pairs("OTEL_RESOURCE_ATTRIBUTES", environ.get("OTEL_RESOURCE_ATTRIBUTES", ""))
    for item in kept.split(","):
        name, _, value = item.partition("=")
        if unquote(name.strip()) == key:
            return unquote(value.strip())
    return None


def _standard_settings(environ: Mapping[str, str]) -> dict[str, Any]:
    protocol = environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf").strip()
    content = environ.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "")
    service = environ.get("OTEL_SERVICE_NAME") or _resource_value(environ, "service.name")
    return {
        "service_name": service or "unknown_service",
        "service_version": _resource_value(environ, "service.version") or "unknown",
        "environment": _resource_value(environ, "deployment.environment.name")
        or _resource_value(environ, "deployment.environment")
        or "development",
        "sdk_disabled": environ.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE,
        "protocol": protocol if protocol in _PROTOCOLS else "http/protobuf",
        "capture_message_content": content.strip().lower() in _TRUE,
    }


def _standard_sources(environ: Mapping[str, str]) -> dict[str, str]:
    """Where each setting read from a standard variable came from: default or environment."""
    found = {
        "service_name": bool(environ.get("OTEL_SERVICE_NAME"))
        or _resource_value(environ, "service.name") is not None,
        "service_version": _resource_value(environ, "service.version") is not None,
        "environment": _resource_value(environ, "deployment.environment.name") is not None
        or _resource_value(environ, "deployment.environment") is not None,
        "sdk_disabled": "OTEL_SDK_DISABLED" in environ,
        "protocol": environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip() in _PROTOCOLS,
        "capture_message_content": "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT" in environ,
    }
    return {name: ENVIRONMENT if present else DEFAULT for name, present in found.items()}


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Settings, list[Finding]]:
    """Read settings from ``environ`` (default ``os.environ``) and keyword overrides."""
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    values: dict[str, Any] = _standard_settings(environ)
    sources: dict[str, str] = _standard_sources(environ)
    findings: list[Finding] = []

    for variable in VARIABLES:
        raw = environ.get(variable.name)
        value, problem = variable.default, None
        sources[variable.setting] = DEFAULT
        if raw is not None:
            value, problem = _parse(variable, raw)
            sources[variable.setting] = DEFAULT if problem else ENVIRONMENT
            if problem:
                findings.append(Finding(variable.name, raw, problem))
        if variable.setting in overrides:
            value, problem = _parse_override(variable, overrides.pop(variable.setting))
            sources[variable.setting] = ARGUMENT
            if problem:
                findings.append(Finding(f"configure({variable.setting}=...)", str(value), problem))
        values[variable.setting] = value

    for name, value in list(overrides.items()):
        if name in {f.name for f in fields(Settings)} and name != "sources":
            values[name] = value
            sources[name] = ARGUMENT
        else:
            close = difflib.get_close_matches(name, [f.name for f in fields(Settings)], n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            findings.append(
                Finding(f"configure({name}=...)", repr(value), f"unknown setting{hint}")
            )

    if values.get("cache_dir") is None:
        values["cache_dir"] = _home_cache()
    findings.extend(_unknown_names(environ))
    findings.extend(
        Finding(name, _shown_value(name, environ.get(name, "")), message)
        for name, _, message in standard_fixes(environ)
    )
    return Settings(**values, sources=MappingProxyType(sources)), findings


_active: Settings | None = None
_active_lock = threading.Lock()


def set_active(settings: Settings | None) -> None:
    """Record the settings of the running configuration (``configure()`` calls this)."""
    global _active
    with _active_lock:
        _active = settings


def get_settings() -> Settings:
    """Return the active settings, or read them from the environment if none are active."""
    with _active_lock:
        if _active is not None:
            return _active
    return load_settings()[0]


def report(findings: list[Finding]) -> None:
    """Log each finding once, as a warning that says what was used instead."""
    for finding in findings:
        diag_logger.warning("otel-obs configuration: %s", finding)


def markdown_table() -> str:
    """Return the README table of ``OTEL_OBS_*`` variables."""
    rows = ["| variable | default | accepted | meaning |", "| --- | --- | --- | --- |"]
    for variable in VARIABLES:
        default = "unset" if variable.default is None else str(variable.default).lower() \
            if isinstance(variable.default, bool) else str(variable.default)
        rows.append(f"| `{variable.name}` | `{default}` | {variable.accepted} | {variable.doc} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    if "--markdown" in sys.argv:
        sys.stdout.write(markdown_table())
    else:
        print("usage: python -m otel_obs.config --markdown", file=sys.stderr)
        sys.exit(2)
