"""An instrumented Python process for the stack tests: sends known telemetry over OTLP/HTTP.

Run as ``python tests/stack/emitter.py SCENARIO --endpoint URL [--service NAME] [...]``; it
prints one JSON object saying what it sent. Scenarios:

- ``catalog``: one data point for every metric of tests/stack/catalog.py, with its
  instrument and unit, so the names Prometheus stores can be read back.
- ``traffic``: a FastAPI app instrumented by the official instrumentation serves
  ``--ok`` successful and ``--errors`` failing requests, and a ``gen_ai.client.cost``
  counter (USD) gets the ``--cost`` values.
- ``ai``: LLM calls recorded by ``otel_obs.ai.llm_call`` (``--call input,output,cache_read``
  each), priced by otel-obs from the prices in ``OTEL_OBS_PRICES_FILE``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from catalog import CATALOG
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_obs import semconv


def _providers(endpoint: str, service: str) -> tuple[TracerProvider, MeterProvider]:
    resource = Resource.create({"service.name": service, "deployment.environment.name": "test"})
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics"),
        export_interval_millis=60_000,
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"))
    )
    return tracer_provider, meter_provider


def emit_catalog(meter_provider: MeterProvider) -> dict:
    meter = meter_provider.get_meter("otel_obs.tests.catalog")
    attributes = {"probe": "catalog"}
    for metric in CATALOG:
        if metric.instrument == "counter":
            meter.create_counter(metric.name, unit=metric.unit).add(1, attributes)
        elif metric.instrument == "up_down_counter":
            meter.create_up_down_counter(metric.name, unit=metric.unit).add(1, attributes)
        elif metric.instrument == "gauge":
            meter.create_gauge(metric.name, unit=metric.unit).set(1, attributes)
        else:
            meter.create_histogram(metric.name, unit=metric.unit).record(1, attributes)
    return {"metrics": [metric.name for metric in CATALOG]}


def emit_traffic(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    ok: int,
    errors: int,
    costs: list[float],
) -> dict:
    from fastapi import FastAPI, HTTPException
    from fastapi.testclient import TestClient
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    app = FastAPI()

    @app.get("/items/{item_id}")
    def read_item(item_id: int) -> dict:
        return {"id": item_id}

    @app.get("/fail")
    def fail() -> dict:
        raise HTTPException(status_code=500, detail="failing on purpose")

    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    statuses: dict[str, int] = {}
    with TestClient(app) as client:
        paths = [f"/items/{i}" for i in range(ok)] + ["/fail"] * errors
        for path in paths:
            code = str(client.get(path).status_code)
            statuses[code] = statuses.get(code, 0) + 1

    cost = meter_provider.get_meter("otel_obs.tests.ai").create_counter(
        semconv.METRIC_GEN_AI_COST, unit="USD", description="Cost of GenAI calls"
    )
    for value in costs:
        cost.add(value, {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini"})
    return {"statuses": statuses, "costs": costs}


def emit_ai(
    tracer_provider: TracerProvider, meter_provider: MeterProvider, calls: list[str]
) -> dict:
    from opentelemetry import metrics, trace

    from otel_obs.ai import llm_call

    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    costs = []
    for spec in calls:
        input_tokens, output_tokens, cache_read = (int(part) for part in spec.split(","))
        with llm_call("openai", "stack-test-model") as call:
            call.record_usage(input_tokens, output_tokens, cache_read=cache_read)
        costs.append(str(call.cost))
    return {"costs": costs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=("catalog", "traffic", "ai"))
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--service", default="stack-test")
    parser.add_argument("--ok", type=int, default=0)
    parser.add_argument("--errors", type=int, default=0)
    parser.add_argument("--cost", type=float, action="append", default=[])
    parser.add_argument("--call", action="append", default=[])
    args = parser.parse_args(argv)

    # The stable HTTP metric names (http.server.request.duration in seconds).
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    tracer_provider, meter_provider = _providers(args.endpoint, args.service)
    if args.scenario == "catalog":
        result = emit_catalog(meter_provider)
    elif args.scenario == "ai":
        result = emit_ai(tracer_provider, meter_provider, args.call)
    else:
        result = emit_traffic(tracer_provider, meter_provider, args.ok, args.errors, args.cost)

    flushed = meter_provider.force_flush(timeout_millis=10_000)
    flushed = tracer_provider.force_flush(timeout_millis=10_000) and flushed
    meter_provider.shutdown()
    tracer_provider.shutdown()
    print(json.dumps({**result, "flushed": flushed}))
    return 0 if flushed else 1


if __name__ == "__main__":
    sys.exit(main())
