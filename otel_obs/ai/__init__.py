"""AI token and cost telemetry: GenAI spans, token and cost metrics, prices.

- ``instrument(settings, tracer_provider, meter_provider)``: record every call of the
  installed ``openai``, ``anthropic`` and ``google-genai`` clients.
- ``wrap_span_processor(export_processor, settings, meter_provider)``: add cost to GenAI spans
  that other instrumentations make.
- ``llm_call(provider, model)`` / ``@llm_span(provider, model)``: record calls no client
  instrumentation sees.
- ``price_for(model)`` and ``compute_cost(usage, prices)``: the prices and arithmetic used.

Names follow the GenAI semantic conventions (``otel_obs.semconv.SEMCONV_VERSION``).
"""

from __future__ import annotations

from otel_obs.ai.instrument import instrument, uninstrument
from otel_obs.ai.manual import LlmCallHandle, current_llm_call, llm_call, llm_span
from otel_obs.ai.pricing import Cost, ModelPrices, compute_cost, price_for
from otel_obs.ai.processor import CostSpanProcessor, wrap_span_processor
from otel_obs.ai.usage import Usage

__all__ = [
    "Cost",
    "CostSpanProcessor",
    "LlmCallHandle",
    "ModelPrices",
    "Usage",
    "compute_cost",
    "current_llm_call",
    "instrument",
    "llm_call",
    "llm_span",
    "price_for",
    "uninstrument",
    "wrap_span_processor",
]
