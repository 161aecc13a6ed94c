"""Fixtures for the whole suite: in-memory SDK providers, a real OTLP/HTTP receiver, and a
clean-environment runner.

Errors inside otel-obs's guard are raised, not swallowed, for the whole test session, so a
bug hidden by the guard fails a test; tests that prove the swallowing unset the variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from clean_env import RunResult, run_code

from otel_obs.receiver import OTLPReceiver

os.environ["OTEL_OBS_RAISE_INTERNAL_ERRORS"] = "true"


@pytest.fixture
def otlp_receiver() -> Iterator[OTLPReceiver]:
    """A real OTLP/HTTP protobuf receiver on 127.0.0.1 and a free port."""
    with OTLPReceiver() as receiver:
        yield receiver


@pytest.fixture
def run_python() -> Callable[..., RunResult]:
    """``run_python(code, env=..., timeout=...) -> (returncode, stdout, stderr, elapsed)``."""
    return run_code


@dataclass
class MemorySDK:
    """SDK providers that keep what they are given in memory (not set as the globals)."""

    tracer_provider: Any
    meter_provider: Any
    logger_provider: Any
    span_exporter: Any
    metric_reader: Any
    log_exporter: Any

    def spans(self) -> list[Any]:
        return list(self.span_exporter.get_finished_spans())

    def logs(self) -> list[Any]:
        return list(self.log_exporter.get_finished_logs())

    def points(self, metric: str) -> list[Any]:
        """The data points of ``metric`` collected now."""
        data = self.metric_reader.get_metrics_data()
        return [
            point
            for resource_metrics in (data.resource_metrics if data else [])
            for scope_metrics in resource_metrics.scope_metrics
            for item in scope_metrics.metrics
            if item.name == metric
            for point in item.data.data_points
        ]


@pytest.fixture
def memory_sdk() -> Iterator[MemorySDK]:
    """Tracer, meter and logger providers exporting synchronously to memory."""
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
    reader = InMemoryMetricReader()
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider = LoggerProvider(shutdown_on_exit=False)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    meter_provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    sdk = MemorySDK(tracer_provider, meter_provider, logger_provider, spans, reader, logs)
    yield sdk
    for provider in (tracer_provider, meter_provider, logger_provider):
        provider.shutdown()


@pytest.fixture(scope="session")
def official_distro_path() -> str:
    """A folder holding the upstream opentelemetry-distro, to put on PYTHONPATH.

    Installed once into the cache, outside the project's environment, so that it competes
    with otel-obs only in the tests that ask for it.
    """
    import subprocess
    import sys
    from pathlib import Path

    from opentelemetry.instrumentation.version import __version__

    cache = Path(os.environ.get("OTEL_OBS_CACHE_DIR", Path.home() / ".cache" / "otel-obs"))
    target = cache / "bench" / f"opentelemetry-distro-{__version__}"
    if not (target / "opentelemetry" / "distro").is_dir():
        installed = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
             str(target), f"opentelemetry-distro=={__version__}"],
            capture_output=True, text=True, timeout=300, check=False,
        )
        if installed.returncode != 0:
            pytest.skip(f"could not install opentelemetry-distro: {installed.stderr[-500:]}")
    return str(target)
