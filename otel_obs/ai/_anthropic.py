"""Anthropic messages: ``create`` (streamed or not), ``parse`` and the ``stream()`` helper."""

from __future__ import annotations

from typing import Any

import wrapt

from otel_obs import semconv
from otel_obs._guard import guard
from otel_obs.ai import usage
from otel_obs.ai._call import CURRENT_CALL, AiTelemetry, LlmCall
from otel_obs.ai._content import text_of
from otel_obs.ai._streams import ObservedAsyncStream, ObservedStream
from otel_obs.ai.instrument import (
    Adapter,
    _fail,
    _start,
    async_wrapper,
    given,
    on_uninstrument,
    patch_method,
    server_of,
    sync_wrapper,
)


def _begin(
    telemetry: AiTelemetry, instance: Any, kwargs: dict[str, Any], streaming: bool
) -> LlmCall:
    client = getattr(instance, "_client", None)
    provider = getattr(client, "_gen_ai_provider_name", None)
    address, port = server_of(getattr(client, "base_url", ""))
    model = kwargs.get("model")
    call = LlmCall(
        telemetry,
        provider if isinstance(provider, str) and provider else "anthropic",
        "chat",
        model if given(model) else None,
        server_address=address,
        server_port=port,
        streaming=streaming,
        attributes={semconv.GEN_AI_REQUEST_STREAM: True} if streaming else None,
    )
    if telemetry.content is not None:
        call.set_input_messages(_input_messages(kwargs))
    return call


def _input_messages(kwargs: dict[str, Any]) -> list[tuple[str, str]]:
    messages: list[tuple[str, str]] = []
    system = kwargs.get("system")
    if given(system):
        messages.append(("system", text_of(system)))
    for message in kwargs.get("messages") or []:
        if isinstance(message, dict):
            messages.append((str(message.get("role", "")), text_of(message.get("content"))))
    return messages


def _read_message(call: LlmCall, message: Any) -> None:
    call.set_response(
        getattr(message, "model", None),
        getattr(message, "id", None),
        [getattr(message, "stop_reason", None)],
    )
    call.add_usage(usage.from_anthropic(getattr(message, "usage", None)))
    if call.telemetry.content is not None:
        for block in getattr(message, "content", None) or []:
            if getattr(block, "type", None) == "text":
                call.output_parts.append(str(getattr(block, "text", "")))


def _observe_event(call: LlmCall, event: Any) -> None:
    kind = getattr(event, "type", None)
    if kind == "message_start":
        message = getattr(event, "message", None)
        call.set_response(getattr(message, "model", None), getattr(message, "id", None))
        _fold_usage(call, getattr(message, "usage", None), final=False)
    elif kind == "message_delta":
        call.set_response(
            finish_reasons=[getattr(getattr(event, "delta", None), "stop_reason", None)]
        )
        _fold_usage(call, getattr(event, "usage", None))
    elif kind == "content_block_delta" and call.telemetry.content is not None:
        delta = getattr(event, "delta", None)
        if getattr(delta, "type", None) == "text_delta":
            call.output_parts.append(str(getattr(delta, "text", "")))


def _fold_usage(call: LlmCall, raw: Any, final: bool = True) -> None:
    """Stream usage is cumulative and split over events; normalise what has been seen."""
    if raw is None:
        return
    seen = usage.merge_anthropic_raw(call.state.get("raw_usage", {}), raw, final)
    call.state["raw_usage"] = seen
    call.usage = usage.from_anthropic(seen)


def _stream_proxy(stream: Any, is_async: bool) -> type | None:
    wanted = "AsyncStream" if is_async else "Stream"
    for cls in type(stream).__mro__:
        if cls.__name__ == wanted and cls.__module__.startswith("anthropic"):
            return ObservedAsyncStream if is_async else ObservedStream
    return None


class MessagesAdapter(Adapter):
    def __init__(self, is_async: bool):
        self.is_async = is_async

    def begin(
        self, telemetry: AiTelemetry, instance: Any, kwargs: dict[str, Any]
    ) -> tuple[LlmCall, dict[str, Any]]:
        return _begin(telemetry, instance, kwargs, streaming=kwargs.get("stream") is True), kwargs

    def on_response(self, call: LlmCall, response: Any) -> None:
        if type(response).__name__ == "LegacyAPIResponse" and hasattr(response, "parse"):
            response = response.parse()
        _read_message(call, response)

    def wrap_stream(self, call: LlmCall, stream: Any) -> Any:
        proxy = _stream_proxy(stream, self.is_async)
        if proxy is None or not call.streaming:
            return None
        return proxy(stream, call, _observe_event)


class StreamHelperAdapter(MessagesAdapter):
    """``messages.stream()``: the request is sent when its manager's ``with`` block starts."""

    def begin(
        self, telemetry: AiTelemetry, instance: Any, kwargs: dict[str, Any]
    ) -> tuple[LlmCall, dict[str, Any]]:
        return _begin(telemetry, instance, kwargs, streaming=True), kwargs


class _ObservedManager(wrapt.ObjectProxy):
    """A ``MessageStreamManager`` whose stream, once opened, is watched by our call."""

    def __init__(
        self, wrapped: Any, adapter: StreamHelperAdapter, instance: Any, kwargs: dict[str, Any]
    ):
        super().__init__(wrapped)
        self._self_adapter = adapter
        self._self_instance = instance
        self._self_kwargs = kwargs

    def _self_start(self) -> LlmCall | None:
        call = None
        with guard("ai: start an LLM call span"):
            call, _ = _start(self._self_adapter, self._self_instance, self._self_kwargs)
        return call

    def _self_watch(self, call: LlmCall, message_stream: Any, is_async: bool) -> None:
        with guard("ai: watch an Anthropic message stream"):
            raw = getattr(message_stream, "_raw_stream", None)
            if raw is None:
                call.finish()  # an unknown stream layout: the span ends without usage
                return
            proxy = ObservedAsyncStream if is_async else ObservedStream
            message_stream._raw_stream = proxy(raw, call, _observe_event)

    def __enter__(self) -> Any:
        call = self._self_start()
        if call is None:
            return self.__wrapped__.__enter__()
        try:
            with call.activated():
                message_stream = self.__wrapped__.__enter__()
        except BaseException as error:
            _fail(call, error)
            raise
        self._self_watch(call, message_stream, is_async=False)
        return message_stream

    def __exit__(self, *exc_info: object) -> Any:
        return self.__wrapped__.__exit__(*exc_info)

    async def __aenter__(self) -> Any:
        call = self._self_start()
        if call is None:
            return await self.__wrapped__.__aenter__()
        try:
            with call.activated():
                message_stream = await self.__wrapped__.__aenter__()
        except BaseException as error:
            _fail(call, error)
            raise
        self._self_watch(call, message_stream, is_async=True)
        return message_stream

    async def __aexit__(self, *exc_info: object) -> Any:
        return await self.__wrapped__.__aexit__(*exc_info)


def _stream_helper_wrapper(adapter: StreamHelperAdapter) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
        manager = wrapped(*args, **kwargs)
        observed = manager
        with guard("ai: watch an Anthropic stream helper"):
            observed = _ObservedManager(manager, adapter, instance, dict(kwargs))
        return observed

    return wrapper


def patch_messages(module: Any) -> None:
    for name in ("create", "parse"):
        patch_method(module.Messages, name, sync_wrapper(MessagesAdapter(is_async=False)))
        patch_method(module.AsyncMessages, name, async_wrapper(MessagesAdapter(is_async=True)))
    patch_method(
        module.Messages, "stream", _stream_helper_wrapper(StreamHelperAdapter(is_async=False))
    )
    patch_method(
        module.AsyncMessages, "stream", _stream_helper_wrapper(StreamHelperAdapter(is_async=True))
    )


def patch_native_spans(module: Any) -> None:
    """Have the client make no span of its own for a call that already has ours."""
    client_class = getattr(module, "BaseClient", None)
    original = (client_class.__dict__ if client_class else {}).get("_tracer")
    if not isinstance(original, property) or original.fget is None:
        return

    def tracer(self: Any) -> Any:
        if CURRENT_CALL.get() is not None:
            return None
        return original.fget(self)

    client_class._tracer = property(tracer, doc=original.__doc__)
    on_uninstrument(lambda: setattr(client_class, "_tracer", original))
