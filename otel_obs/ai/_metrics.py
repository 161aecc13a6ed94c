"""The GenAI metric instruments, one set per meter provider.

Token usage and operation duration use the names, units and bucket boundaries of the GenAI
conventions; cost, cache savings, errors and unpriced calls are ours. Attributes are the
provider, operation, models, server and (on failures) error type: all bounded, never a
prompt, an id or a raw URL.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from opentelemetry import metrics

from otel_obs import semconv
from otel_obs.version import __version__

METER_NAME = "otel_obs.ai"

# Unknown model names reach a metric attribute; past this many distinct ones they share one.
MAX_UNPRICED_MODELS = 200
OTHER_MODEL = "_OTHER"

_by_provider: weakref.WeakKeyDictionary[Any, AiInstruments] = weakref.WeakKeyDictionary()
_global: AiInstruments | None = None
_lock = threading.Lock()


class AiInstruments:
    """Histograms and counters for LLM calls, created from one meter."""

    def __init__(self, meter: metrics.Meter):
        self.token_usage = meter.create_histogram(
            semconv.METRIC_GEN_AI_TOKEN_USAGE,
            unit="{token}",
            description="Tokens used by GenAI calls, by token type (input includes cached tokens)",
            explicit_bucket_boundaries_advisory=semconv.GEN_AI_TOKEN_USAGE_BUCKETS,
        )
        self.duration = meter.create_histogram(
            semconv.METRIC_GEN_AI_OPERATION_DURATION,
            unit="s",
            description="Duration of GenAI calls, streams until their last chunk",
            explicit_bucket_boundaries_advisory=semconv.GEN_AI_DURATION_BUCKETS,
        )
        self.time_to_first_chunk = meter.create_histogram(
            semconv.METRIC_GEN_AI_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time from the request to the first chunk of a streamed GenAI response",
            explicit_bucket_boundaries_advisory=semconv.GEN_AI_DURATION_BUCKETS,
        )
        self.cost = meter.create_counter(
            semconv.METRIC_GEN_AI_COST,
            unit="USD",
            description="Cost of GenAI calls in US dollars, at the prices in otel_obs.cost.source",
        )
        self.cost_saved = meter.create_counter(
            semconv.METRIC_GEN_AI_COST_SAVED,
            unit="USD",
            description="US dollars saved by prompt-cache reads against the uncached input price",
        )
        self.errors = meter.create_counter(
            semconv.METRIC_GEN_AI_ERRORS,
            unit="{error}",
            description="GenAI calls that failed, by error.type",
        )
        self.unpriced_calls = meter.create_counter(
            semconv.METRIC_GEN_AI_UNPRICED_CALLS,
            unit="{call}",
            description="GenAI calls with no cost, by model and otel_obs.cost.status",
        )
        self.cache_tokens = meter.create_counter(
            semconv.METRIC_GEN_AI_CACHE_TOKENS,
            unit="{token}",
            description="Input tokens read from or written to a prompt cache, by otel_obs.cache.operation",
        )
        self._unpriced_models: set[str] = set()

    def unpriced_model_label(self, model: str) -> str:
        """``model`` as a metric attribute, or ``_OTHER`` past the cap on distinct names."""
        if model in self._unpriced_models:
            return model
        with _lock:
            if len(self._unpriced_models) >= MAX_UNPRICED_MODELS:
                return OTHER_MODEL
            self._unpriced_models.add(model)
        return model


def instruments_for(meter_provider: Any = None) -> AiInstruments:
    """The instruments for ``meter_provider`` (the global one when ``None``), made once each."""
    global _global
    if meter_provider is None:
        if _global is None:
            with _lock:
                if _global is None:
                    _global = AiInstruments(_meter(None))
        return _global
    found = _by_provider.get(meter_provider)
    if found is None:
        with _lock:
            found = _by_provider.get(meter_provider)
            if found is None:
                found = _by_provider[meter_provider] = AiInstruments(_meter(meter_provider))
    return found


def _meter(meter_provider: Any) -> metrics.Meter:
    return metrics.get_meter(
        METER_NAME, __version__, meter_provider=meter_provider, schema_url=semconv.SCHEMA_URL
    )
