"""What otel-obs adds to one LLM span: pricing, GenAI metrics and the cost processor.

Three ways to produce the same GenAI CLIENT span with the same usage attributes, run
interleaved in one process (rounds of A, B, C) so that machine noise hits all of them alike:

- baseline: a plain SDK span with the GenAI attributes, exported through a span processor;
- otel-obs call: the span from ``LlmCall`` (what the client instrumentation and ``llm_call``
  use): usage, price resolution, exact cost, token/duration/cost metrics, ``CostSpanProcessor``
  passing the already-priced span through;
- processor only: the baseline span priced afterwards by ``CostSpanProcessor`` (the path for
  spans made by other instrumentations).

The exporter drops spans, and metrics go to an in-memory reader that is never collected
during timing, so the figures are our work alone. Run: ``python benchmarks/ai_span.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from types import SimpleNamespace

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from otel_obs import semconv
from otel_obs.ai import wrap_span_processor
from otel_obs.ai._call import AiTelemetry, LlmCall
from otel_obs.ai.usage import Usage

USAGE = Usage(input_tokens=1000, output_tokens=500, cache_read_tokens=400)
ATTRIBUTES = {
    semconv.GEN_AI_OPERATION_NAME: "chat",
    semconv.GEN_AI_PROVIDER_NAME: "openai",
    semconv.GEN_AI_REQUEST_MODEL: "gpt-4o",
    semconv.SERVER_ADDRESS: "api.openai.com",
    semconv.SERVER_PORT: 443,
}
RESPONSE = {
    semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-2024-08-06",
    semconv.GEN_AI_RESPONSE_ID: "chatcmpl-123",
    semconv.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
    **USAGE.attributes(),
}


class DroppingExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _baseline(tracer_provider: TracerProvider) -> Callable[[], None]:
    tracer = tracer_provider.get_tracer("baseline.genai")

    def one() -> None:
        span = tracer.start_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes=ATTRIBUTES)
        span.set_attributes(RESPONSE)
        span.end()

    return one


def _ours(telemetry: AiTelemetry) -> Callable[[], None]:
    def one() -> None:
        call = LlmCall(
            telemetry, "openai", "chat", "gpt-4o", server_address="api.openai.com", server_port=443
        )
        call.set_response("gpt-4o-2024-08-06", "chatcmpl-123", ["stop"])
        call.add_usage(USAGE)
        call.finish()

    return one


def _time(step: Callable[[], None], spans: int) -> float:
    started = time.perf_counter()
    for _ in range(spans):
        step()
    return (time.perf_counter() - started) / spans * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--spans", type=int, default=2000, help="spans per variant per round")
    args = parser.parse_args(argv)

    settings = SimpleNamespace(
        ai_instrumentation=True, prices_file=None, capture_message_content=False
    )
    plain = TracerProvider()
    plain.add_span_processor(SimpleSpanProcessor(DroppingExporter()))

    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    priced = TracerProvider()
    priced.add_span_processor(
        wrap_span_processor(SimpleSpanProcessor(DroppingExporter()), settings, meter_provider)
    )
    telemetry = AiTelemetry.create(settings, priced, meter_provider)

    variants = {
        "baseline span": _baseline(plain),
        "otel-obs call": _ours(telemetry),
        "processor only": _baseline(priced),
    }
    for step in variants.values():  # warm up: loads the bundled prices, fills caches
        _time(step, 200)

    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, step in variants.items():
            samples[name].append(_time(step, args.spans))

    medians = {name: statistics.median(values) for name, values in samples.items()}
    base = medians["baseline span"]
    print(
        f"{args.rounds} interleaved rounds x {args.spans} spans per variant;"
        " median microseconds per span"
    )
    for name, value in medians.items():
        spread = f"(min {min(samples[name]):.1f}, max {max(samples[name]):.1f})"
        extra = (
            ""
            if name == "baseline span"
            else f"  ratio {value / base:.2f}x, +{value - base:.1f} us"
        )
        print(f"  {name:<15} {value:7.1f} us {spread}{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
