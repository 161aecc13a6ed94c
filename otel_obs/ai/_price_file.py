"""The override prices file (``OTEL_OBS_PRICES_FILE``): reading and checking it.

The format is described in ``otel_obs.ai.pricing``. Every problem is reported with the file,
the entry and the field, and the value that is wrong.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from otel_obs.ai._rates import ModelPrices, Rate


class PricesFileError(ValueError):
    """The override prices file cannot be used; the message names the file, entry and field."""


_RATE_KEYS = {
    "input": "input",
    "cached_input": "cache_read",
    "cache_write": "cache_write",
    "output": "output",
}
_ENTRY_KEYS = {
    "match",
    "regex",
    "model",
    "provider",
    "effective_from",
    "tiers",
    "price_as",
    *_RATE_KEYS,
}


@dataclass
class OverrideEntry:
    pattern: re.Pattern[str]
    pattern_text: str
    provider: str | None
    effective_from: date | None
    prices: ModelPrices | None
    price_as: str | None


@dataclass
class OverrideTable:
    """The entries of one override file, in file order."""

    path: str
    entries: list[OverrideEntry] = field(default_factory=list)

    @property
    def source(self) -> str:
        return f"override-file {Path(self.path).name}"

    def find(self, name: str, provider: str | None, when: datetime) -> OverrideEntry | None:
        """The entry that prices ``name`` at ``when`` (see the module docstring's rule)."""
        chosen_pattern = None
        best: OverrideEntry | None = None
        for entry in self.entries:
            if chosen_pattern is not None and entry.pattern_text != chosen_pattern:
                continue
            if entry.provider and provider and entry.provider != provider.lower():
                continue
            if not entry.pattern.fullmatch(name):
                continue
            chosen_pattern = entry.pattern_text
            if entry.effective_from and entry.effective_from > when.date():
                continue
            if best is None or (entry.effective_from or date.min) > (
                best.effective_from or date.min
            ):
                best = entry
        return best


def load_overrides(path: str) -> OverrideTable:
    """Read and check an override file; raise ``PricesFileError`` naming what is wrong."""
    text = _read(path)
    try:
        if path.lower().endswith(".json"):
            document = json.loads(text)
        else:
            import yaml

            document = yaml.safe_load(text)
    except Exception as error:  # noqa: BLE001 (any parse error becomes one clear message)
        raise PricesFileError(
            f"{path}: not valid {'JSON' if path.endswith('.json') else 'YAML'}: {error}"
        )
    items = document.get("models") if isinstance(document, Mapping) else document
    if not isinstance(items, list):
        raise PricesFileError(
            f"{path}: expected a list of models (or a mapping with a 'models' list)"
        )
    table = OverrideTable(path=path)
    for index, item in enumerate(items):
        table.entries.append(_entry(item, f"{path}: models[{index}]", table.source))
    return table


def check_prices_file(path: str) -> list[str]:
    """Every problem with the override file at ``path`` (empty when it is usable)."""
    try:
        load_overrides(path)
    except PricesFileError as error:
        return [str(error)]
    return []


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise PricesFileError(f"{path}: cannot be read ({error.strerror or error})")


def _entry(item: Any, where: str, source: str) -> OverrideEntry:
    if not isinstance(item, Mapping):
        raise PricesFileError(f"{where}: expected a mapping, got {type(item).__name__}")
    unknown = set(item) - _ENTRY_KEYS
    if unknown:
        allowed = ", ".join(sorted(_ENTRY_KEYS))
        raise PricesFileError(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))}; allowed: {allowed}"
        )
    pattern, pattern_text = _pattern(item, where)
    price_as = item.get("price_as")
    if price_as is not None and (not isinstance(price_as, str) or not price_as.strip()):
        raise PricesFileError(
            f"{where}.price_as: expected 'base' or a model name, got {price_as!r}"
        )
    prices = None if price_as else _entry_prices(item, where, pattern_text, source)
    provider = item.get("provider")
    if provider is not None and not isinstance(provider, str):
        raise PricesFileError(f"{where}.provider: expected a string, got {provider!r}")
    return OverrideEntry(
        pattern=pattern,
        pattern_text=pattern_text,
        provider=provider.lower() if provider else None,
        effective_from=_date(item.get("effective_from"), f"{where}.effective_from"),
        prices=prices,
        price_as=price_as.strip() if price_as else None,
    )


def _pattern(item: Mapping[str, Any], where: str) -> tuple[re.Pattern[str], str]:
    given = [key for key in ("match", "regex", "model") if key in item]
    if len(given) != 1:
        raise PricesFileError(
            f"{where}: give exactly one of match (glob), regex or model, got {given or 'none'}"
        )
    key = given[0]
    value = item[key]
    if not isinstance(value, str) or not value:
        raise PricesFileError(f"{where}.{key}: expected a non-empty string, got {value!r}")
    if key == "match":
        expression = fnmatch.translate(value)
    elif key == "regex":
        expression = value
    else:
        expression = re.escape(value)
    try:
        return re.compile(expression, re.IGNORECASE), f"{key}:{value}"
    except re.error as error:
        raise PricesFileError(f"{where}.regex: not a valid regular expression ({error})")


def _entry_prices(
    item: Mapping[str, Any], where: str, pattern_text: str, source: str
) -> ModelPrices:
    for required in ("input", "output"):
        if required not in item:
            raise PricesFileError(
                f"{where}: missing {required!r} (USD per million tokens) or price_as"
            )
    base = {name: _money(item.get(key), f"{where}.{key}") for key, name in _RATE_KEYS.items()}
    tiers: dict[str, list[tuple[int, Decimal]]] = {name: [] for name in base}
    raw_tiers = item.get("tiers") or []
    if not isinstance(raw_tiers, list):
        raise PricesFileError(f"{where}.tiers: expected a list, got {type(raw_tiers).__name__}")
    for index, tier in enumerate(raw_tiers):
        tier_where = f"{where}.tiers[{index}]"
        if not isinstance(tier, Mapping) or "above" not in tier:
            raise PricesFileError(f"{tier_where}: expected a mapping with 'above' (input tokens)")
        above = tier["above"]
        if isinstance(above, bool) or not isinstance(above, int) or above < 0:
            raise PricesFileError(
                f"{tier_where}.above: expected a whole number of tokens, got {above!r}"
            )
        for key, name in _RATE_KEYS.items():
            if key in tier:
                tiers[name].append((above, _money(tier[key], f"{tier_where}.{key}")))

    def rate(name: str) -> Rate | None:
        value = base[name]
        if value is None:
            return None
        return Rate(value, tuple(sorted(tiers[name])))

    return ModelPrices(
        model=pattern_text.split(":", 1)[1],
        input=rate("input"),  # type: ignore[arg-type]
        output=rate("output"),  # type: ignore[arg-type]
        cache_read=rate("cache_read"),
        cache_write=rate("cache_write"),
        source=source,
    )


def _money(value: Any, where: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise PricesFileError(
            f"{where}: expected a number of USD per million tokens, got {value!r}"
        )
    try:
        # str() keeps a YAML/JSON float such as 0.3 as the decimal the file wrote.
        amount = Decimal(str(value))
    except InvalidOperation:
        raise PricesFileError(
            f"{where}: expected a number of USD per million tokens, got {value!r}"
        )
    if not amount.is_finite() or amount < 0:
        raise PricesFileError(f"{where}: expected a finite price of 0 or more, got {value!r}")
    return amount


def _date(value: Any, where: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise PricesFileError(f"{where}: expected a date like 2025-01-31, got {value!r}")
