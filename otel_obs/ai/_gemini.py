"""Google Gen AI (Gemini): one span per ``generateContent`` request the client sends.

The public ``generate_content`` may send several requests (automatic function calling,
continuation); each is billed, so each gets its own span and cost. The per-request methods
are private to the client: when a release renames them, the public ones are wrapped instead.
"""

from __future__ import annotations

from typing import Any

from otel_obs import semconv
from otel_obs.ai import usage
from otel_obs.ai._call import AiTelemetry, LlmCall
from otel_obs.ai._content import text_of
from otel_obs.ai._streams import ObservedAsyncStream, ObservedStream
from otel_obs.ai.instrument import Adapter, async_wrapper, patch_method, server_of, sync_wrapper

OFFICIAL = ("opentelemetry.instrumentation.google_genai", "GoogleGenAiSdkInstrumentor")


def _begin(
    telemetry: AiTelemetry, instance: Any, kwargs: dict[str, Any], streaming: bool
) -> LlmCall:
    api_client = getattr(instance, "_api_client", None)
    vertex = bool(getattr(api_client, "vertexai", False))
    base_url = getattr(getattr(api_client, "_http_options", None), "base_url", "") or ""
    address, port = server_of(base_url)
    model = kwargs.get("model")
    call = LlmCall(
        telemetry,
        "gcp.vertex_ai" if vertex else "gcp.gemini",
        "generate_content",
        model if isinstance(model, str) else None,
        server_address=address,
        server_port=port,
        streaming=streaming,
        attributes={semconv.GEN_AI_REQUEST_STREAM: True} if streaming else None,
    )
    if telemetry.content is not None:
        call.set_input_messages(_input_messages(kwargs.get("contents")))
    return call


def _input_messages(contents: Any) -> list[tuple[str, str]]:
    if isinstance(contents, str):
        return [("user", contents)]
    if not isinstance(contents, (list, tuple)):
        contents = [contents]
    messages = []
    for content in contents:
        if isinstance(content, str):
            messages.append(("user", content))
            continue
        role = getattr(content, "role", None) or (
            content.get("role") if isinstance(content, dict) else None
        )
        parts = getattr(content, "parts", None) or (
            content.get("parts") if isinstance(content, dict) else None
        )
        messages.append((str(role or "user"), text_of(parts or [])))
    return messages


def _observe_response(call: LlmCall, response: Any) -> None:
    candidates = getattr(response, "candidates", None) or []
    call.set_response(
        getattr(response, "model_version", None),
        getattr(response, "response_id", None),
        (getattr(candidate, "finish_reason", None) for candidate in candidates),
    )
    raw_usage = getattr(response, "usage_metadata", None)
    if raw_usage is not None:
        call.add_usage(usage.from_gemini(raw_usage))
    if call.telemetry.content is not None and candidates:
        parts = getattr(getattr(candidates[0], "content", None), "parts", None) or []
        call.output_parts.append(text_of(parts))


class GenerateAdapter(Adapter):
    official = OFFICIAL

    def __init__(self, streaming: bool, is_async: bool):
        self.streaming = streaming
        self.is_async = is_async

    def begin(
        self, telemetry: AiTelemetry, instance: Any, kwargs: dict[str, Any]
    ) -> tuple[LlmCall, dict[str, Any]]:
        return _begin(telemetry, instance, kwargs, self.streaming), kwargs

    def on_response(self, call: LlmCall, response: Any) -> None:
        _observe_response(call, response)

    def wrap_stream(self, call: LlmCall, stream: Any) -> Any:
        if not self.streaming:
            return None
        proxy = ObservedAsyncStream if self.is_async else ObservedStream
        return proxy(stream, call, _observe_response)


def patch_models(module: Any) -> None:
    for cls, is_async in ((module.Models, False), (module.AsyncModels, True)):
        wrap = async_wrapper if is_async else sync_wrapper
        per_request = hasattr(cls, "_generate_content") and hasattr(cls, "_generate_content_stream")
        names = (
            ("_generate_content", "_generate_content_stream")
            if per_request
            else (
                "generate_content",
                "generate_content_stream",
            )
        )
        patch_method(cls, names[0], wrap(GenerateAdapter(streaming=False, is_async=is_async)))
        patch_method(cls, names[1], wrap(GenerateAdapter(streaming=True, is_async=is_async)))
