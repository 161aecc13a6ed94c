"""Rates and the cost arithmetic: exact decimal USD per million tokens.

Cost is uncached input, cache reads, cache writes and output, each at its own rate; reasoning
tokens are part of the output and billed as output. A model with no rate for cache reads or
writes bills them at its input rate. Context-length tiers apply to the whole call once its
total input (cache included) is above the tier's threshold.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from otel_obs.ai.usage import Usage

PER_MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Rate:
    """USD per million tokens, possibly by context-length tier."""

    base: Decimal
    tiers: tuple[tuple[int, Decimal], ...] = ()

    def at(self, input_tokens: int) -> Decimal:
        """The rate for a call with ``input_tokens`` of total input."""
        rate = self.base
        for above, tier_rate in self.tiers:
            if input_tokens > above:
                rate = tier_rate
        return rate


@dataclass(frozen=True)
class ModelPrices:
    """The rates one model is billed at, and where they come from."""

    model: str
    input: Rate
    output: Rate
    cache_read: Rate | None = None
    cache_write: Rate | None = None
    provider: str | None = None
    source: str = ""

    def rows(self) -> Iterator[tuple[str, Rate | None]]:
        yield "input", self.input
        yield "cached input", self.cache_read
        yield "cache write", self.cache_write
        yield "output", self.output


@dataclass(frozen=True)
class Cost:
    """The cost of one call in USD, split by what was billed."""

    input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    output: Decimal
    saved_by_cache: Decimal
    prices: ModelPrices

    @property
    def total(self) -> Decimal:
        return self.input + self.cache_read + self.cache_write + self.output


def compute_cost(usage: Usage, prices: ModelPrices) -> Cost | None:
    """The cost of ``usage`` at ``prices``; ``None`` unless input and output are both known."""
    if usage.input_tokens is None or usage.output_tokens is None:
        return None
    total_input = usage.input_tokens
    read = usage.cache_read_tokens or 0
    write = usage.cache_write_tokens or 0
    uncached = max(total_input - read - write, 0)
    input_rate = prices.input.at(total_input)
    read_rate = prices.cache_read.at(total_input) if prices.cache_read else input_rate
    write_rate = prices.cache_write.at(total_input) if prices.cache_write else input_rate
    output_rate = prices.output.at(total_input)
    return Cost(
        input=uncached * input_rate / PER_MILLION,
        cache_read=read * read_rate / PER_MILLION,
        cache_write=write * write_rate / PER_MILLION,
        output=usage.output_tokens * output_rate / PER_MILLION,
        saved_by_cache=max(read * (input_rate - read_rate) / PER_MILLION, Decimal(0)),
        prices=prices,
    )
