"""Model prices and the cost of one call, in exact decimal USD.

Prices come from two places, and the first that knows the model wins:

1. The override file named by ``OTEL_OBS_PRICES_FILE`` (YAML or JSON, format below).
2. The data bundled in the installed ``genai-prices`` package. It is read from the package
   itself, never fetched: nothing here touches the network.

Which price a model name gets (the resolution rule), for the response model first and then the
request model:

1. Surrounding whitespace is dropped; an empty or missing name has no price.
2. Override file entries are tried in file order; the first whose pattern matches the whole
   name (case-insensitive), and whose ``provider`` (when it has one) is the call's, decides.
   Among entries with that same pattern, the one with the latest ``effective_from`` on or
   before the call's date applies; when none is in effect yet, the rule goes on to step 3.
3. A name starting with ``ft:`` (an OpenAI fine-tune) gets no bundled price: fine-tunes are
   billed at their own rates, so only an override entry prices them (``price_as: base`` says
   "price it as the model it was tuned from").
4. The bundled data is searched with the name lower-cased; then without a resource prefix
   (``models/``, ``publishers/google/models/``, ``openai/``); then also without a trailing
   snapshot date (``-2024-08-06``, ``-20240806``, ``@20240806``). The provider
   (``gen_ai.provider.name``) narrows the search first; the model name alone is tried next.

Cost: uncached input, cache reads, cache writes and output, each at its own rate per million
tokens; reasoning tokens are part of the output and billed as output. A rate the model does
not have for cache reads or writes falls back to its input rate. Context-length tiers apply
to the whole call once its total input (cache included) is above the tier's threshold.

Override file format (USD per million tokens)::

    models:
      - match: "ft:gpt-4o-mini-2024-07-18:acme:*"   # glob; or `regex:` or exact `model:`
        provider: openai                           # optional: only this gen_ai.provider.name
        input: 0.30
        cached_input: 0.15                         # optional, default: input
        cache_write: 0.30                          # optional, default: input
        output: 1.20
        effective_from: 2025-01-01                 # optional
        tiers:                                     # optional
          - above: 200000                          # total input tokens
            input: 0.60
            output: 2.40
      - match: "ft:*"
        price_as: base           # or the name of another model, e.g. price_as: gpt-4o
"""

from __future__ import annotations

import argparse
import os
import re
import threading
from collections.abc import Iterable
from datetime import datetime, timezone

from otel_obs._diag import warn_once
from otel_obs.ai._bundled import PROVIDER_IDS, BundledPrices, bundled_source
from otel_obs.ai._price_file import (
    OverrideTable,
    PricesFileError,
    check_prices_file,
    load_overrides,
)
from otel_obs.ai._rates import Cost, ModelPrices, Rate, compute_cost

__all__ = [
    "PROVIDER_IDS",
    "BundledPrices",
    "Cost",
    "ModelPrices",
    "OverrideTable",
    "Pricer",
    "PricesFileError",
    "Rate",
    "add_prices_arguments",
    "bundled_source",
    "check_prices_file",
    "compute_cost",
    "load_overrides",
    "price_for",
    "run_prices",
]

PRICES_FILE_ENV = "OTEL_OBS_PRICES_FILE"

_DATE_SUFFIX = re.compile(r"[-@](?:\d{4}-\d{2}-\d{2}|\d{8})$")
_RESOURCE_PREFIX = re.compile(r"^(?:.*/)?models/")
_VENDOR_PREFIX = re.compile(r"^[a-z0-9_.-]+/")


# --- resolution --------------------------------------------------------------------------


def name_variants(name: str) -> list[str]:
    """The names tried in the bundled data for ``name``, in order (rule step 4)."""
    lowered = name.strip().lower()
    without_prefix = _RESOURCE_PREFIX.sub("", lowered)
    if "/" in without_prefix:
        without_prefix = _VENDOR_PREFIX.sub("", without_prefix)
    variants = [lowered, without_prefix, _DATE_SUFFIX.sub("", without_prefix)]
    return list(dict.fromkeys(variants))


def fine_tune_base(name: str) -> str | None:
    """The model an OpenAI fine-tune name was tuned from (``ft:BASE:org:suffix:id``)."""
    if not name.lower().startswith("ft:"):
        return None
    base = name[3:].split(":", 1)[0]
    return base or None


class Pricer:
    """Resolves model names to prices (override file first, then bundled data)."""

    def __init__(
        self, overrides: OverrideTable | None = None, bundled: BundledPrices | None = None
    ):
        self.overrides = overrides
        self._bundled = bundled
        self._bundled_lock = threading.Lock()

    @classmethod
    def from_prices_file(cls, path: str | None) -> Pricer:
        """A pricer with the override file at ``path``; a bad file is warned about and skipped."""
        if not path:
            return cls()
        try:
            return cls(load_overrides(path))
        except PricesFileError as error:
            warn_once(
                f"prices-file:{path}",
                "otel-obs: override prices file not used, bundled prices only: %s",
                error,
            )
            return cls()

    @property
    def bundled(self) -> BundledPrices:
        # Loading the bundled data takes ~0.2 s, so it waits for the first priced call.
        if self._bundled is None:
            with self._bundled_lock:
                if self._bundled is None:
                    self._bundled = BundledPrices()
        return self._bundled

    def resolve(
        self,
        names: Iterable[str | None],
        provider: str | None = None,
        when: datetime | None = None,
    ) -> ModelPrices | None:
        """Prices for the first of ``names`` that has one (response model before request)."""
        when = when or datetime.now(timezone.utc)
        for name in dict.fromkeys(n.strip() for n in names if isinstance(n, str) and n.strip()):
            found = self._resolve_one(name, provider, when, depth=0)
            if found is not None:
                return found
        return None

    def _resolve_one(
        self, name: str, provider: str | None, when: datetime, depth: int
    ) -> ModelPrices | None:
        entry = self.overrides.find(name, provider, when) if self.overrides else None
        if entry is not None:
            if entry.prices is not None:
                return entry.prices
            target = fine_tune_base(name) if entry.price_as == "base" else entry.price_as
            if target and depth < 3:
                return self._resolve_one(target, provider, when, depth + 1)
            return None
        if fine_tune_base(name):
            return None
        for variant in name_variants(name):
            found = self.bundled.find(variant, provider, when)
            if found is not None:
                return found
        return None


# --- the `otel-obs prices` command -------------------------------------------------------


def add_prices_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="model name, as the API reports it")
    parser.add_argument(
        "--provider", help="gen_ai.provider.name, e.g. openai, anthropic, gcp.gemini"
    )
    parser.add_argument(
        "--prices-file",
        help=f"override prices file (default: ${PRICES_FILE_ENV} or the settings)",
    )


def run_prices(args: argparse.Namespace) -> int:
    """Print the prices used for MODEL and their source; exit 1 when it has none."""
    path = args.prices_file or _settings_prices_file()
    overrides = None
    if path:
        try:
            overrides = load_overrides(path)
        except PricesFileError as error:
            print(f"error: {error}")
            return 2
    prices = Pricer(overrides).resolve([args.model], args.provider)
    if prices is None:
        print(
            f"no price for {args.model!r}: its calls get no cost attribute "
            "(otel_obs.cost.status unknown_model)"
        )
        return 1
    print("\n".join(describe(prices, args.model)))
    return 0


def describe(prices: ModelPrices, asked: str) -> list[str]:
    """Lines describing ``prices`` for a person: model, source, each rate and its tiers."""
    bundled = prices.source.startswith("genai-prices")
    lines = [
        f"model:    {prices.model}" + ("" if prices.model == asked else f"  (asked for {asked!r})"),
        f"provider: {prices.provider or '-'}",
        f"source:   {prices.source}" + (" (data bundled with the package)" if bundled else ""),
        "USD per million tokens:",
    ]
    for label, rate in prices.rows():
        if rate is None:
            lines.append(f"  {label:<13} billed as input")
            continue
        tiers = "".join(f"; above {above:,} input tokens: {value}" for above, value in rate.tiers)
        lines.append(f"  {label:<13} {rate.base}{tiers}")
    return lines


def _settings_prices_file() -> str | None:
    try:
        from otel_obs.config import get_settings

        return getattr(get_settings(), "prices_file", None)
    except Exception:  # noqa: BLE001 (the command still works from the environment alone)
        return os.environ.get(PRICES_FILE_ENV) or None


def price_for(
    model: str, provider: str | None = None, prices_file: str | None = None
) -> ModelPrices | None:
    """The prices otel-obs would use for ``model`` today, or ``None`` when it has none."""
    return Pricer.from_prices_file(prices_file).resolve([model], provider)
