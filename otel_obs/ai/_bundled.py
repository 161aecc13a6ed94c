"""The price data bundled in the installed ``genai-prices`` package, read without network."""

from __future__ import annotations

import threading
from datetime import datetime
from decimal import Decimal
from typing import Any

from otel_obs.ai._rates import ModelPrices, Rate

# gen_ai.provider.name values (and the older gen_ai.system ones) -> genai-prices provider ids.
PROVIDER_IDS = {
    "openai": "openai",
    "azure.ai.openai": "azure",
    "az.ai.openai": "azure",
    "anthropic": "anthropic",
    "gcp.gemini": "google",
    "gcp.gen_ai": "google",
    "gcp.vertex_ai": "google",
    "gemini": "google",
    "vertex_ai": "google",
    "aws.bedrock": "aws",
    "deepseek": "deepseek",
    "groq": "groq",
    "mistral_ai": "mistral",
    "x_ai": "x-ai",
    "xai": "x-ai",
    "perplexity": "perplexity",
    "cohere": "cohere",
}


def bundled_source() -> str:
    """The price source label of the bundled data: the genai-prices version installed."""
    import genai_prices

    return f"genai-prices {genai_prices.__version__}"


class BundledPrices:
    """Lookups in the price data shipped inside the genai-prices package (no network)."""

    def __init__(self) -> None:
        from genai_prices import data, data_snapshot

        # Our own snapshot of the bundled data: an application that turned on the package's
        # background updater changes only the package's global snapshot, not this one.
        self._snapshot = data_snapshot.DataSnapshot(
            providers=data.providers, from_auto_update=False
        )
        self.source = bundled_source()
        self._lock = threading.Lock()
        self._models: dict[tuple[str | None, str], Any] = {}
        self._converted: dict[int, ModelPrices] = {}

    def find(self, name: str, provider: str | None, when: datetime) -> ModelPrices | None:
        found = self._find_model(name, provider)
        if found is None:
            return None
        provider_info, model_info = found
        model_price = model_info.get_prices(when)
        key = id(model_price)
        converted = self._converted.get(key)
        if converted is None:
            converted = self._convert(model_info, provider_info, model_price)
            with self._lock:
                self._converted[key] = converted
        return converted

    def _find_model(self, name: str, provider: str | None) -> Any:
        key = (provider, name)
        if key in self._models:
            return self._models[key]
        found = None
        provider_ids = [PROVIDER_IDS.get(provider, provider)] if provider else []
        for provider_id in [*provider_ids, None]:
            try:
                found = self._snapshot.find_provider_model(name, None, provider_id, None)
                break
            except LookupError:
                continue
        with self._lock:
            if len(self._models) > 4096:
                self._models.clear()
            self._models[key] = found
        return found

    def _convert(self, model_info: Any, provider_info: Any, model_price: Any) -> ModelPrices | None:
        rates = {
            name: _rate_from_genai_prices(getattr(model_price, f"{name}_mtok", None))
            for name in ("input", "output", "cache_read", "cache_write")
        }
        if rates["input"] is None and rates["output"] is None:
            return None
        zero = Rate(Decimal(0))
        return ModelPrices(
            model=model_info.id,
            input=rates["input"] or zero,
            output=rates["output"] or zero,
            cache_read=rates["cache_read"],
            cache_write=rates["cache_write"],
            provider=provider_info.id,
            source=self.source,
        )


def _rate_from_genai_prices(value: Any) -> Rate | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return Rate(value)
    tiers = tuple((int(tier.start), Decimal(tier.price)) for tier in value.tiers)
    return Rate(Decimal(value.base), tiers)
