"""The real export path: OTLP/HTTP protobuf from the SDK's exporters into a live receiver."""

from __future__ import annotations

import pytest
from ai_support import TOLERANCE, make_settings, usd
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_obs import ai, semconv
from otel_obs.receiver import OTLPReceiver


def latest(points: list) -> object:
    """The last export of a cumulative series (flush and shutdown both export it)."""
    assert points
    return max(points, key=lambda point: point.time_ns)


@pytest.fixture
def receiver():
    with OTLPReceiver() as running:
        yield running


def test_cost_span_and_metrics_arrive_over_otlp_http(
    receiver: OTLPReceiver, anthropic_client
) -> None:
    settings = make_settings()
    resource = Resource.create({"service.name": "checkout-api"})
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{receiver.endpoint}/v1/metrics"),
        export_interval_millis=60_000,
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    tracer_provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces")
    tracer_provider.add_span_processor(
        ai.wrap_span_processor(BatchSpanProcessor(exporter), settings, meter_provider)
    )
    ai.instrument(settings, tracer_provider, meter_provider)
    try:
        anthropic_client.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=64,
            messages=[{"role": "user", "content": "hello"}],
            extra_headers={"x-llm-usage": "input=3,cache_write=12304,cached=0,output=550"},
        )
        tracer_provider.force_flush()
        meter_provider.force_flush()
    finally:
        ai.uninstrument()
        tracer_provider.shutdown()
        meter_provider.shutdown()

    assert receiver.wait_for(
        lambda r: r.spans() and r.points(semconv.METRIC_GEN_AI_COST), timeout=10
    )
    (span,) = receiver.spans()
    assert span.name == "chat claude-sonnet-4-5"
    assert span.resource["service.name"] == "checkout-api"
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 12307
    assert span.attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(
        usd("0.054399"), abs=TOLERANCE
    )
    assert span.attributes[semconv.OTEL_OBS_COST_SOURCE].startswith("genai-prices ")

    cost = latest(receiver.points(semconv.METRIC_GEN_AI_COST))
    assert cost.unit == "USD" and cost.is_monotonic
    assert cost.value == pytest.approx(usd("0.054399"), abs=TOLERANCE)
    assert cost.attributes[semconv.GEN_AI_REQUEST_MODEL] == "claude-sonnet-4-5"
    usage = {
        token_type: latest(
            [
                p
                for p in receiver.points(semconv.METRIC_GEN_AI_TOKEN_USAGE)
                if p.attributes[semconv.GEN_AI_TOKEN_TYPE] == token_type
            ]
        )
        for token_type in ("input", "output")
    }
    assert (usage["input"].sum, usage["output"].sum) == (12307, 550)
    assert usage["input"].bounds == list(semconv.GEN_AI_TOKEN_USAGE_BUCKETS)
    duration = latest(receiver.points(semconv.METRIC_GEN_AI_OPERATION_DURATION))
    assert duration.unit == "s" and duration.count == 1
    assert duration.bounds == list(semconv.GEN_AI_DURATION_BUCKETS)
