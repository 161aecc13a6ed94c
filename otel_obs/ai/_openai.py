"""OpenAI chat completions and responses: what a call is, and what its answer tells."""

from __future__ import annotations

from typing import Any

from otel_obs import semconv
from otel_obs.ai import usage
from otel_obs.ai._call import AiTelemetry, LlmCall
from otel_obs.ai._content import text_of
from otel_obs.ai._streams import ObservedAsyncStream, ObservedStream
from otel_obs.ai.instrument import (
    Adapter,
    async_wrapper,
    given,
    patch_method,
    server_of,
    sync_wrapper,
)

OFFICIAL = ("opentelemetry.instrumentation.openai_v2", "OpenAIInstrumentor")


def _provider(client: Any) -> str:
    return "azure.ai.openai" if type(client).__name__.startswith("Azure") else "openai"


def _begin(telemetry: AiTelemetry, instance: Any, kwargs: dict[str, Any], api_type: str) -> LlmCall:
    client = getattr(instance, "_client", None)
    address, port = server_of(getattr(client, "base_url", ""))
    streaming = kwargs.get("stream") is True
    attributes: dict[str, Any] = {semconv.OPENAI_API_TYPE: api_type}
    if streaming:
        attributes[semconv.GEN_AI_REQUEST_STREAM] = True
    model = kwargs.get("model")
    return LlmCall(
        telemetry,
        _provider(client),
        "chat",
        model if given(model) else None,
        server_address=address,
        server_port=port,
        streaming=streaming,
        attributes=attributes,
    )


def _stream_class(stream: Any, is_async: bool) -> type | None:
    names = ("AsyncStream",) if is_async else ("Stream",)
    for cls in type(stream).__mro__:
        if cls.__name__ in names and cls.__module__.startswith("openai"):
            return ObservedAsyncStream if is_async else ObservedStream
    return None


def _parsed(response: Any) -> Any:
    """The parsed body of a ``with_raw_response`` answer; other answers as they are."""
    if type(response).__name__ == "LegacyAPIResponse" and hasattr(response, "parse"):
        return response.parse()
    return response


class ChatAdapter(Adapter):
    official = OFFICIAL

    def __init__(self, is_async: bool):
        self.is_async = is_async

    def begin(
        self, telemetry: AiTelemetry, instance: Any, kwargs: dict[str, Any]
    ) -> tuple[LlmCall, dict[str, Any]]:
        call = _begin(telemetry, instance, kwargs, "chat_completions")
        if call.streaming and not given(kwargs.get("stream_options")):
            kwargs["stream_options"] = {"include_usage": True}
            call.state["injected_usage_chunk"] = True
        messages = kwargs.get("messages")
        if isinstance(messages, (list, tuple)):
            call.set_input_messages(
                (str(m.get("role", "")), text_of(m.get("content")))
                for m in messages
                if isinstance(m, dict)
            )
        return call, kwargs

    def on_response(self, call: LlmCall, response: Any) -> None:
        response = _parsed(response)
        choices = getattr(response, "choices", None) or []
        call.set_response(
            getattr(response, "model", None),
            getattr(response, "id", None),
            (getattr(choice, "finish_reason", None) for choice in choices),
        )
        call.add_usage(usage.from_openai_chat(getattr(response, "usage", None)))
        if call.telemetry.content is not None and choices:
            call.output_parts.append(text_of(getattr(choices[0].message, "content", None)))

    def wrap_stream(self, call: LlmCall, stream: Any) -> Any:
        proxy = _stream_class(stream, self.is_async)
        if proxy is None or not call.streaming:
            return None
        return proxy(stream, call, _observe_chat_chunk, _hide_injected_usage_chunk)


def _observe_chat_chunk(call: LlmCall, chunk: Any) -> None:
    choices = getattr(chunk, "choices", None) or []
    call.set_response(
        getattr(chunk, "model", None),
        getattr(chunk, "id", None),
        (getattr(choice, "finish_reason", None) for choice in choices),
    )
    raw_usage = getattr(chunk, "usage", None)
    if raw_usage is not None:
        call.add_usage(usage.from_openai_chat(raw_usage))
    if call.telemetry.content is not None:
        for choice in choices:
            if getattr(choice, "index", 0) == 0:
                call.output_parts.append(text_of(getattr(choice.delta, "content", None)))


def _hide_injected_usage_chunk(call: LlmCall, chunk: Any) -> bool:
    # Only the chunk we asked for: no choices, usage set, in a stream whose options we set.
    injected = call.state.get("injected_usage_chunk", False)
    return (
        injected
        and not getattr(chunk, "choices", None)
        and getattr(chunk, "usage", None) is not None
    )


_FINISH_BY_STATUS = {"completed": "stop", "failed": "error", "cancelled": "cancelled"}
_TERMINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")


def _read_response_object(call: LlmCall, response: Any) -> None:
    status = getattr(response, "status", None)
    reason = _FINISH_BY_STATUS.get(status) if status else None
    if status == "incomplete":
        reason = (
            getattr(getattr(response, "incomplete_details", None), "reason", None) or "incomplete"
        )
    call.set_response(getattr(response, "model", None), getattr(response, "id", None), [reason])
    call.add_usage(usage.from_openai_responses(getattr(response, "usage", None)))


class ResponsesAdapter(Adapter):
    official = None  # the official instrumentation has no Responses API support

    def __init__(self, is_async: bool):
        self.is_async = is_async

    def begin(
        self, telemetry: AiTelemetry, instance: Any, kwargs: dict[str, Any]
    ) -> tuple[LlmCall, dict[str, Any]]:
        call = _begin(telemetry, instance, kwargs, "responses")
        given_input = kwargs.get("input")
        if isinstance(given_input, str):
            call.set_input_messages([("user", given_input)])
        elif isinstance(given_input, (list, tuple)):
            call.set_input_messages(
                (str(m.get("role", "user")), text_of(m.get("content")))
                for m in given_input
                if isinstance(m, dict)
            )
        return call, kwargs

    def on_response(self, call: LlmCall, response: Any) -> None:
        response = _parsed(response)
        _read_response_object(call, response)
        text = getattr(response, "output_text", None)
        if call.telemetry.content is not None and isinstance(text, str):
            call.output_parts.append(text)

    def wrap_stream(self, call: LlmCall, stream: Any) -> Any:
        proxy = _stream_class(stream, self.is_async)
        if proxy is None or not call.streaming:
            return None
        return proxy(stream, call, _observe_response_event)


def _observe_response_event(call: LlmCall, event: Any) -> None:
    kind = getattr(event, "type", None)
    if kind in ("response.created", "response.in_progress"):
        response = getattr(event, "response", None)
        call.set_response(getattr(response, "model", None), getattr(response, "id", None))
    elif kind in _TERMINAL_EVENTS:
        _read_response_object(call, getattr(event, "response", None))
    elif kind == "response.output_text.delta" and call.telemetry.content is not None:
        call.output_parts.append(str(getattr(event, "delta", "") or ""))


def patch_chat(module: Any) -> None:
    for name in ("create", "parse"):
        patch_method(module.Completions, name, sync_wrapper(ChatAdapter(is_async=False)))
        patch_method(module.AsyncCompletions, name, async_wrapper(ChatAdapter(is_async=True)))


def patch_responses(module: Any) -> None:
    for name in ("create", "parse"):
        patch_method(module.Responses, name, sync_wrapper(ResponsesAdapter(is_async=False)))
        patch_method(module.AsyncResponses, name, async_wrapper(ResponsesAdapter(is_async=True)))
