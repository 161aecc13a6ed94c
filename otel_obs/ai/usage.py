"""Token usage, normalised from each provider's wire format into one record.

The record follows the GenAI semantic conventions: ``input_tokens`` counts *all* input tokens,
cache reads and cache writes included, and ``output_tokens`` counts all output tokens,
reasoning included. Providers disagree on this, so each has its own reader:

- OpenAI chat: ``prompt_tokens`` already includes ``prompt_tokens_details.cached_tokens``;
  ``completion_tokens`` includes ``completion_tokens_details.reasoning_tokens``.
- OpenAI responses: the same with ``input_tokens`` / ``input_tokens_details.cached_tokens`` and
  ``output_tokens`` / ``output_tokens_details.reasoning_tokens``.
- Anthropic: ``input_tokens`` is only the *uncached* part; the input total is
  ``input_tokens + cache_creation_input_tokens + cache_read_input_tokens``.
- Gemini: ``prompt_token_count`` includes ``cached_content_token_count``; the output total is
  ``candidates_token_count + thoughts_token_count`` (Gemini counts thoughts apart).

A count the provider did not send stays ``None`` (unknown), never 0. A count that is not a
non-negative integer is unknown too. Inconsistent usage (more cached than total input, more
reasoning than total output) is clamped to the total, with one warning per provider.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from otel_obs import semconv
from otel_obs._diag import warn_once

COMPLETE = "complete"
PARTIAL = "partial"
UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Usage:
    """Token counts of one call; ``None`` means the provider did not report it."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None

    @property
    def status(self) -> str:
        """``complete`` when input and output are known, ``unavailable`` when neither is."""
        known = (self.input_tokens is not None, self.output_tokens is not None)
        if all(known):
            return COMPLETE
        return PARTIAL if any(known) else UNAVAILABLE

    @property
    def uncached_input_tokens(self) -> int | None:
        if self.input_tokens is None:
            return None
        return self.input_tokens - (self.cache_read_tokens or 0) - (self.cache_write_tokens or 0)

    def merged(self, later: Usage) -> Usage:
        """This usage with every count that ``later`` knows replaced by ``later``'s."""
        return Usage(
            *(
                mine if theirs is None else theirs
                for mine, theirs in zip(_counts(self), _counts(later))
            )
        )

    def attributes(self) -> dict[str, int]:
        """The GenAI span attributes for the known counts."""
        pairs = (
            (semconv.GEN_AI_USAGE_INPUT_TOKENS, self.input_tokens),
            (semconv.GEN_AI_USAGE_OUTPUT_TOKENS, self.output_tokens),
            (semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, self.cache_read_tokens),
            (semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, self.cache_write_tokens),
            (semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, self.reasoning_tokens),
        )
        return {name: value for name, value in pairs if value is not None}


UNKNOWN = Usage()


def _counts(usage: Usage) -> tuple[int | None, ...]:
    return (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        usage.reasoning_tokens,
    )


def count(value: Any) -> int | None:
    """``value`` as a token count, or ``None`` when it is not a non-negative whole number."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and value >= 0:
        return int(value)
    return None


def field(obj: Any, *path: str) -> Any:
    """Follow ``path`` through mappings or attributes; ``None`` where anything is missing."""
    for name in path:
        if obj is None:
            return None
        if isinstance(obj, Mapping):
            obj = obj.get(name)
        else:
            obj = getattr(obj, name, None)
    return obj


def _add(*values: int | None) -> int | None:
    """The sum of the known values; ``None`` when the first one (the base) is unknown."""
    if values[0] is None:
        return None
    return sum(v for v in values if v is not None)


def usage(
    input_tokens: Any = None,
    output_tokens: Any = None,
    cache_read: Any = None,
    cache_write: Any = None,
    reasoning: Any = None,
    *,
    source: str = "manual",
) -> Usage:
    """A ``Usage`` from counts in the conventions' sense (input includes cache tokens)."""
    record = Usage(
        count(input_tokens),
        count(output_tokens),
        count(cache_read),
        count(cache_write),
        count(reasoning),
    )
    return clamped(record, source)


def clamped(record: Usage, source: str) -> Usage:
    """``record`` with parts that exceed their total cut down to it; warns once per source."""
    cache_write, cache_read, reasoning = (
        record.cache_write_tokens,
        record.cache_read_tokens,
        record.reasoning_tokens,
    )
    if record.input_tokens is not None:
        if cache_write is not None:
            cache_write = min(cache_write, record.input_tokens)
        if cache_read is not None:
            cache_read = min(cache_read, record.input_tokens - (cache_write or 0))
    if record.output_tokens is not None and reasoning is not None:
        reasoning = min(reasoning, record.output_tokens)
    fixed = replace(
        record,
        cache_write_tokens=cache_write,
        cache_read_tokens=cache_read,
        reasoning_tokens=reasoning,
    )
    if fixed != record:
        warn_once(
            f"usage-inconsistent:{source}",
            "otel-obs: %s reported more cached or reasoning tokens than its total; "
            "the parts were cut down to the total (warned once)",
            source,
        )
    return fixed


def from_openai_chat(raw: Any) -> Usage:
    """Usage of an OpenAI chat completion (``usage`` object or dict, or ``None``)."""
    if raw is None:
        return UNKNOWN
    return clamped(
        Usage(
            input_tokens=count(field(raw, "prompt_tokens")),
            output_tokens=count(field(raw, "completion_tokens")),
            cache_read_tokens=count(field(raw, "prompt_tokens_details", "cached_tokens")),
            reasoning_tokens=count(field(raw, "completion_tokens_details", "reasoning_tokens")),
        ),
        "openai",
    )


def from_openai_responses(raw: Any) -> Usage:
    """Usage of an OpenAI Responses API response."""
    if raw is None:
        return UNKNOWN
    return clamped(
        Usage(
            input_tokens=count(field(raw, "input_tokens")),
            output_tokens=count(field(raw, "output_tokens")),
            cache_read_tokens=count(field(raw, "input_tokens_details", "cached_tokens")),
            reasoning_tokens=count(field(raw, "output_tokens_details", "reasoning_tokens")),
        ),
        "openai",
    )


def from_anthropic(raw: Any) -> Usage:
    """Usage of an Anthropic message; the input total adds the cache buckets reported apart.

    A cache bucket the provider left out adds nothing; an unknown uncached ``input_tokens``
    makes the input total unknown.
    """
    if raw is None:
        return UNKNOWN
    uncached = count(field(raw, "input_tokens"))
    cache_write = count(field(raw, "cache_creation_input_tokens"))
    cache_read = count(field(raw, "cache_read_input_tokens"))
    output = count(field(raw, "output_tokens"))
    return clamped(
        Usage(
            input_tokens=_add(uncached, cache_write, cache_read),
            output_tokens=output,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            reasoning_tokens=count(field(raw, "output_tokens_details", "thinking_tokens")),
        ),
        "anthropic",
    )


def merge_anthropic_raw(
    previous: Mapping[str, Any], raw: Any, final: bool = True
) -> dict[str, Any]:
    """Fold one stream event's usage into the counts seen so far; later known counts win.

    ``message_start`` carries the input buckets and a running output count that is not the
    final one (pass ``final=False``: it is left out, so that a stream abandoned before its
    ``message_delta`` has no output count rather than a wrong one). ``message_delta`` carries
    the final output count (and, in newer API versions, the input buckets, possibly null).
    """
    merged = dict(previous)
    names = ["input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"]
    if final:
        names.append("output_tokens")
    for name in names:
        value = field(raw, name)
        if value is not None:
            merged[name] = value
    thinking = field(raw, "output_tokens_details", "thinking_tokens")
    if thinking is not None:
        merged["output_tokens_details"] = {"thinking_tokens": thinking}
    return merged


def from_gemini(raw: Any) -> Usage:
    """Usage of a Gemini response (``usage_metadata``).

    Gemini leaves zero counts out of its answers, so an absent cache or thoughts count adds
    nothing; an absent prompt or candidates count leaves that total unknown.
    """
    if raw is None:
        return UNKNOWN
    prompt = count(field(raw, "prompt_token_count"))
    tool_prompt = count(field(raw, "tool_use_prompt_token_count"))
    candidates = count(field(raw, "candidates_token_count"))
    thoughts = count(field(raw, "thoughts_token_count"))
    return clamped(
        Usage(
            input_tokens=_add(prompt, tool_prompt),
            output_tokens=_add(candidates, thoughts),
            cache_read_tokens=count(field(raw, "cached_content_token_count")),
            reasoning_tokens=thoughts,
        ),
        "gemini",
    )


# Attribute names some instrumentations use for the same counts, read as fallbacks.
_ATTRIBUTE_ALIASES = {
    "input": (semconv.GEN_AI_USAGE_INPUT_TOKENS, "gen_ai.usage.prompt_tokens"),
    "output": (semconv.GEN_AI_USAGE_OUTPUT_TOKENS, "gen_ai.usage.completion_tokens"),
    "cache_read": (semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,),
    "cache_write": (
        semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
        "gen_ai.usage.cache_write.input_tokens",
    ),
    "reasoning": (semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,),
}


def from_attributes(attributes: Mapping[str, Any], source: str = "span") -> Usage:
    """Usage from the GenAI attributes of a span made by any instrumentation."""

    def read(kind: str) -> int | None:
        for name in _ATTRIBUTE_ALIASES[kind]:
            value = count(attributes.get(name))
            if value is not None:
                return value
        return None

    return clamped(
        Usage(
            read("input"),
            read("output"),
            read("cache_read"),
            read("cache_write"),
            read("reasoning"),
        ),
        source,
    )
