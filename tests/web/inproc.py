"""In-process helpers: SDK providers with in-memory exporters, requests to an ASGI app."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind


@dataclass
class Telemetry:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    @property
    def providers(self) -> dict[str, Any]:
        return {"tracer_provider": self.tracer_provider, "meter_provider": self.meter_provider}

    def spans(self, kind: SpanKind | None = None) -> list[ReadableSpan]:
        spans = self.exporter.get_finished_spans()
        return [s for s in spans if kind is None or s.kind == kind]

    def server_spans(self) -> list[ReadableSpan]:
        return self.spans(SpanKind.SERVER)

    def points(self, metric: str) -> list[Any]:
        """Data points of ``metric`` collected now (cumulative)."""
        data = self.reader.get_metrics_data()
        if data is None:
            return []
        return [
            point
            for resource_metrics in data.resource_metrics
            for scope_metrics in resource_metrics.scope_metrics
            for m in scope_metrics.metrics
            if m.name == metric
            for point in m.data.data_points
        ]


def make_telemetry() -> Telemetry:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    return Telemetry(tracer_provider, MeterProvider(metric_readers=[reader]), exporter, reader)


def send(
    app: Any, *requests: tuple[str, str] | tuple[str, str, dict[str, str]]
) -> list[httpx.Response]:
    """Send (method, path[, headers]) requests to ``app`` in process, one after another."""

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            responses = []
            for method, path, *headers in requests:
                responses.append(
                    await client.request(method, path, headers=headers[0] if headers else None)
                )
            return responses

    return asyncio.run(run())


def flood(app: Any, requests: list[tuple[str, str]]) -> dict[int, int]:
    """Send many requests to ``app`` in process, keeping only a count per status code."""

    async def run() -> dict[int, int]:
        statuses: dict[int, int] = {}
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            for method, path in requests:
                status = (await client.request(method, path)).status_code
                statuses[status] = statuses.get(status, 0) + 1
        return statuses

    return asyncio.run(run())
