"""Helpers shared by the AI telemetry tests (the fixtures live in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Sampler

from otel_obs import ai

TOLERANCE = 1e-12


def usd(value: str) -> float:
    """An expected USD amount written as an exact decimal."""
    return float(Decimal(value))


def make_settings(**overrides: Any) -> SimpleNamespace:
    values = {
        "service_name": "ai-tests",
        "ai_instrumentation": True,
        "prices_file": None,
        "capture_message_content": False,
        "redact": True,
        "redact_rules_file": None,
    }
    values.update(overrides)
    return SimpleNamespace(**values)


@dataclass
class Sdk:
    """A tracer and meter provider with in-memory export, our processor and instrumentation."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    settings: SimpleNamespace
    _metrics: Any = field(default=None, repr=False)

    def spans(self, scope: str | None = "otel_obs.ai") -> list[ReadableSpan]:
        spans = self.exporter.get_finished_spans()
        return [s for s in spans if scope is None or s.instrumentation_scope.name == scope]

    def span(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found = []
        for resource_metrics in data.resource_metrics if data else []:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def total(self, name: str, **attributes: Any) -> float:
        """Sum of a counter (or of a histogram's sums) over points matching ``attributes``."""
        total = 0.0
        for point in self.points(name):
            if all(point.attributes.get(k) == v for k, v in attributes.items()):
                total += getattr(point, "value", None) if hasattr(point, "value") else point.sum
        return total

    def count(self, name: str, **attributes: Any) -> int:
        """Number of measurements in a histogram over points matching ``attributes``."""
        return sum(
            point.count
            for point in self.points(name)
            if all(point.attributes.get(k) == v for k, v in attributes.items())
        )


def build_sdk(sampler: Sampler | None = None, instrument: bool = True, **settings: Any) -> Sdk:
    config = make_settings(**settings)
    exporter = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    tracer_provider = TracerProvider(sampler=sampler) if sampler else TracerProvider()
    tracer_provider.add_span_processor(
        ai.wrap_span_processor(SimpleSpanProcessor(exporter), config, meter_provider)
    )
    if instrument:
        ai.instrument(config, tracer_provider, meter_provider)
    return Sdk(tracer_provider, meter_provider, exporter, reader, config)


def gemini_config(**headers: str) -> dict[str, Any]:
    """A generate_content config that sends the given ``x-llm-*`` headers to the server."""
    return {"http_options": {"headers": {k.replace("_", "-"): v for k, v in headers.items()}}}


def llm_headers(**headers: str) -> dict[str, str]:
    """``x_llm_usage="..."`` -> ``{"x-llm-usage": "..."}`` for a client's ``extra_headers``."""
    return {k.replace("_", "-"): v for k, v in headers.items()}
