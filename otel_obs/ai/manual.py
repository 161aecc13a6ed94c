"""Record LLM calls that no client instrumentation sees: self-hosted models, gateways, raw HTTP.

::

    from otel_obs.ai import llm_call

    with llm_call("vllm", "llama-3.1-70b", server_address="gpu-1.internal") as call:
        answer = post_to_my_model(prompt)
        counts = answer["usage"]
        call.record_usage(counts["prompt_tokens"], counts["completion_tokens"])
        call.set_response_model(answer["model"])

The span, the metrics and the cost are the same as for instrumented clients. ``input_tokens``
counts all input tokens, cache reads and writes included (the GenAI conventions' meaning);
``output_tokens`` includes reasoning tokens. Give ``None`` (or nothing) for what you do not
know: it stays unknown, never 0. A model without a bundled price needs an entry in the
override prices file to be priced. Calls made with an instrumented client (openai, anthropic,
google-genai) are recorded already: do not wrap them in ``llm_call`` too.

``@llm_span(provider, model)`` does the same for a whole function; ``current_llm_call()``
inside it gives the handle, and ``usage=`` can read the counts from its return value.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar

from opentelemetry.trace import INVALID_SPAN, Span

from otel_obs._guard import guard
from otel_obs.ai import _call
from otel_obs.ai import usage as usage_mod
from otel_obs.ai._call import LlmCall

F = TypeVar("F", bound=Callable[..., Any])

_current: contextvars.ContextVar[LlmCallHandle | None] = contextvars.ContextVar(
    "otel_obs_manual_llm_call", default=None
)


class LlmCallHandle:
    """What the code inside ``llm_call`` tells about the call. Every method is safe to call."""

    def __init__(self, call: LlmCall | None):
        self._call = call

    @property
    def span(self) -> Span:
        return self._call.span if self._call is not None else INVALID_SPAN

    @property
    def cost(self) -> Decimal | None:
        """The call's cost in USD once it has ended, or ``None`` when it has none."""
        cost = self._call.cost if self._call is not None else None
        return cost.total if cost is not None else None

    def record_usage(
        self,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read: int | None = None,
        cache_write: int | None = None,
        reasoning: int | None = None,
    ) -> None:
        """Set the call's token counts (input includes cache reads and writes)."""
        with guard("ai: record manual LLM usage"):
            if self._call is not None:
                self._call.usage = usage_mod.usage(
                    input_tokens,
                    output_tokens,
                    cache_read,
                    cache_write,
                    reasoning,
                    source=self._call.provider,
                )

    def set_response_model(self, model: str) -> None:
        with guard("ai: record a manual LLM response model"):
            if self._call is not None:
                self._call.set_response(model=model)

    def set_response_id(self, response_id: str) -> None:
        with guard("ai: record a manual LLM response id"):
            if self._call is not None:
                self._call.set_response(response_id=response_id)

    def set_finish_reasons(self, *reasons: str) -> None:
        with guard("ai: record manual LLM finish reasons"):
            if self._call is not None:
                self._call.set_response(finish_reasons=reasons)

    def record_chunk(self) -> None:
        """Call when a streamed chunk arrives; the first one gives the time to first chunk."""
        with guard("ai: record a manual LLM chunk"):
            if self._call is not None:
                self._call.chunk()


def current_llm_call() -> LlmCallHandle:
    """The handle of the ``llm_call`` or ``llm_span`` in progress (a no-op one outside)."""
    return _current.get() or LlmCallHandle(None)


@contextmanager
def llm_call(
    provider: str,
    model: str | None,
    operation: str = "chat",
    *,
    server_address: str | None = None,
    server_port: int | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[LlmCallHandle]:
    """Open a GenAI CLIENT span for one LLM call; usage given to the handle is priced at exit."""
    call = None
    with guard("ai: start a manual LLM call"):
        call = LlmCall(
            _call.current(),
            provider,
            operation,
            model,
            server_address=server_address,
            server_port=server_port,
            attributes=attributes,
        )
    handle = LlmCallHandle(call)
    token = _current.set(handle)
    try:
        if call is None:
            yield handle
            return
        with _activated(call):
            yield handle
    except BaseException as error:
        if call is not None:
            with guard("ai: record a failed manual LLM call"):
                call.fail(error)
        raise
    finally:
        _current.reset(token)
        if call is not None:
            with guard("ai: end a manual LLM call"):
                call.finish()


@contextmanager
def _activated(call: LlmCall) -> Iterator[None]:
    from opentelemetry import trace

    with trace.use_span(
        call.span, end_on_exit=False, record_exception=False, set_status_on_exception=False
    ):
        yield


def llm_span(
    provider: str,
    model: str | None,
    operation: str = "chat",
    *,
    usage: Callable[[Any], Mapping[str, Any] | None] | None = None,
    **call_options: Any,
) -> Callable[[F], F]:
    """Decorate a function (sync or async) that makes one LLM call.

    ``usage``, when given, reads the ``record_usage`` keyword arguments from the function's
    return value.
    """

    def record(handle: LlmCallHandle, result: Any) -> None:
        if usage is None:
            return
        with guard("ai: read usage from a decorated LLM function"):
            counts = usage(result)
            if counts:
                handle.record_usage(**counts)

    def decorate(func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with llm_call(provider, model, operation, **call_options) as handle:
                    result = await func(*args, **kwargs)
                    record(handle, result)
                    return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with llm_call(provider, model, operation, **call_options) as handle:
                result = func(*args, **kwargs)
                record(handle, result)
                return result

        return wrapper  # type: ignore[return-value]

    return decorate
