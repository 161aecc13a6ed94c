"""Proxies that watch a streamed LLM response pass by and end its call.

The caller gets the client's own stream object behind a transparent proxy (``isinstance``
still holds): every chunk reaches the caller unchanged and in order. The proxy hands each chunk
to an observer and ends the call when the stream is exhausted, fails, is closed, leaves its
``with`` block, or is garbage-collected unread. The one chunk it may keep back is the usage
chunk it asked for itself (see ``hide``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import wrapt
from typing_extensions import Self

from otel_obs._guard import guard
from otel_obs.ai._call import LlmCall

Observer = Callable[[LlmCall, Any], None]
Hide = Callable[[LlmCall, Any], bool]


def _end_abandoned(call: LlmCall) -> None:
    with guard("ai: end an abandoned stream's call"):
        call.finish()


class _Observed(wrapt.ObjectProxy):
    def __init__(self, wrapped: Any, call: LlmCall, observe: Observer, hide: Hide | None = None):
        super().__init__(wrapped)
        self._self_call = call
        self._self_observe = observe
        self._self_hide = hide
        # Holds the call, never the proxy: a stream dropped unread still ends its call.
        self._self_finalizer = weakref.finalize(self, _end_abandoned, call)

    def _self_take(self, item: Any) -> bool:
        """Observe one chunk; return whether the caller should not see it."""
        call = self._self_call
        hidden = False
        # Decided apart from observing, so that a failing observer cannot let the chunk we
        # asked for reach a caller who did not ask for it.
        with guard("ai: decide whether a stream chunk is ours"):
            hidden = self._self_hide is not None and self._self_hide(call, item)
        with guard("ai: read a stream chunk"):
            call.chunk()
            self._self_observe(call, item)
        return hidden

    def _self_end(self, error: BaseException | None = None) -> None:
        with guard("ai: end a streamed call"):
            self._self_finalizer.detach()
            if error is not None:
                self._self_call.fail(error)
            self._self_call.finish()


class ObservedStream(_Observed):
    """A synchronous stream (the client's ``Stream`` or a generator)."""

    def __iter__(self) -> ObservedStream:
        return self

    def __next__(self) -> Any:
        while True:
            try:
                item = self.__wrapped__.__next__()
            except StopIteration:
                self._self_end()
                raise
            except BaseException as error:
                self._self_end(error)
                raise
            if not self._self_take(item):
                return item

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            self._self_end()

    def __enter__(self) -> Self:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_end()


class ObservedAsyncStream(_Observed):
    """An asynchronous stream (the client's ``AsyncStream`` or an async generator)."""

    def __aiter__(self) -> ObservedAsyncStream:
        return self

    async def __anext__(self) -> Any:
        while True:
            try:
                item = await self.__wrapped__.__anext__()
            except StopAsyncIteration:
                self._self_end()
                raise
            except BaseException as error:
                self._self_end(error)
                raise
            if not self._self_take(item):
                return item

    async def close(self) -> Any:
        closer = getattr(self.__wrapped__, "close", None) or self.__wrapped__.aclose
        try:
            return await closer()
        finally:
            self._self_end()

    async def aclose(self) -> Any:
        closer = getattr(self.__wrapped__, "aclose", None) or self.__wrapped__.close
        try:
            return await closer()
        finally:
            self._self_end()

    async def __aenter__(self) -> Self:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_end()
