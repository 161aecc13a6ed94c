"""Instrumentation of the ``openai``, ``anthropic`` and ``google-genai`` clients.

``instrument(settings, tracer_provider, meter_provider)`` patches each client when the
application imports it (an import hook, so that an unused client costs no start-up time).
Each call becomes one CLIENT span named ``{operation} {model}`` with the GenAI attributes,
its cost, and the GenAI metrics, recorded whether or not the span is sampled.

Covered: OpenAI chat completions and responses (``create`` and ``parse``, sync and async,
streaming, and the ``stream()`` helpers built on ``create``); Anthropic messages (``create``,
``parse`` and the ``stream()`` helper, sync and async); Gemini ``generate_content`` and
``generate_content_stream`` (sync and async), one span per request the client sends, so that
automatic function calling and continuation hops are each priced.

Why our own wrappers rather than the official OpenTelemetry ones installed beside us:
``opentelemetry-instrumentation-openai-v2`` 2.4b0 does not import with
``opentelemetry-util-genai`` 1.3b0 and has no Responses API support;
``opentelemetry-instrumentation-google-genai`` 1.3b0 declares ``google-genai<3`` and stays
off with google-genai 3.x (forced on, it names the provider ``gemini`` rather than
``gcp.gemini``). When either is active anyway, ours steps aside for that client so that no
call gets two spans; cost is then added by the span processor. The ``anthropic`` client
makes spans of its own; for the calls we instrument it is told not to, for the same reason.

OpenAI chat streams: when the caller did not set ``stream_options``, we ask for
``include_usage`` so that the usage is known, and keep the extra usage-only final chunk
(``choices: []``) from the caller, who sees the stream they asked for. Pass
``stream_options={"include_usage": False}`` to send the request untouched (the call then has
no usage: ``otel_obs.usage.status="unavailable"``, no cost).

``OTEL_OBS_AI_INSTRUMENTATION=false`` turns all of this off.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import wrapt
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, unwrap

from otel_obs._diag import warn_once
from otel_obs._guard import guard
from otel_obs.ai import _call
from otel_obs.ai._call import CURRENT_CALL, AiTelemetry, LlmCall

# Entry-point names of the official instrumentations ours replaces; a zero-code start should
# leave them disabled while this instrumentation is on.
REPLACED_INSTRUMENTATIONS = ("openai", "google-genai")

_lock = threading.Lock()
_wanted = False
_hooks_registered = False
_patched: list[tuple[Any, str]] = []
_patched_modules: set[str] = set()
_restore: list[Callable[[], None]] = []


class Adapter:
    """How one client method is observed: subclasses fill in the provider specifics."""

    # (module, class) of an official instrumentor that, when active, makes us step aside.
    official: tuple[str, str] | None = None

    def begin(
        self, telemetry: AiTelemetry, instance: Any, kwargs: dict[str, Any]
    ) -> tuple[LlmCall, dict[str, Any]]:
        raise NotImplementedError

    def on_response(self, call: LlmCall, response: Any) -> None:
        """Read a complete (non-streamed) response into ``call``."""

    def wrap_stream(self, call: LlmCall, stream: Any) -> Any:
        """The stream to hand the caller, or ``None`` when ``stream`` is not a stream."""
        return None


def instrument(
    settings: Any = None, tracer_provider: Any = None, meter_provider: Any = None
) -> bool:
    """Instrument the installed LLM clients; return whether instrumentation is on.

    Safe to call again: the latest providers and settings apply to every later call.
    """
    global _wanted
    if settings is None:
        settings = _call._settings()
    if not getattr(settings, "ai_instrumentation", True):
        return False
    _call.set_active(AiTelemetry.create(settings, tracer_provider, meter_provider))
    with _lock:
        _wanted = True
        _register_hooks()
    return True


def uninstrument() -> None:
    """Remove every patch and forget the active providers."""
    global _wanted
    with _lock:
        _wanted = False
        while _patched:
            owner, name = _patched.pop()
            with guard("ai: unpatch a client method"):
                unwrap(owner, name)
        while _restore:
            with guard("ai: restore a client attribute"):
                _restore.pop()()
        _patched_modules.clear()
    _call.set_active(None)


def _register_hooks() -> None:
    global _hooks_registered
    if _hooks_registered:
        # Modules imported while uninstrumented are patched now.
        for name, patch in _hook_table().items():
            if name in sys.modules:
                _run_hook(patch, sys.modules[name])
        return
    _hooks_registered = True
    for name, patch in _hook_table().items():
        wrapt.register_post_import_hook(lambda module, patch=patch: _run_hook(patch, module), name)


def _hook_table() -> dict[str, Callable[[Any], None]]:
    from otel_obs.ai import _anthropic, _gemini, _openai

    return {
        "openai.resources.chat.completions.completions": _openai.patch_chat,
        "openai.resources.responses.responses": _openai.patch_responses,
        "anthropic.resources.messages.messages": _anthropic.patch_messages,
        "anthropic._base_client": _anthropic.patch_native_spans,
        "google.genai.models": _gemini.patch_models,
    }


def _run_hook(patch: Callable[[Any], None], module: Any) -> None:
    if not _wanted or module.__name__ in _patched_modules:
        return
    _patched_modules.add(module.__name__)
    with guard(f"ai: instrument {module.__name__}"):
        patch(module)


def patch_method(owner: Any, name: str, wrapper: Callable[..., Any]) -> None:
    """Wrap ``owner.name`` (when it exists) and remember it for ``uninstrument``."""
    if not hasattr(owner, name):
        return
    wrapt.wrap_function_wrapper(owner, name, wrapper)
    _patched.append((owner, name))


def on_uninstrument(restore: Callable[[], None]) -> None:
    _restore.append(restore)


# --- the wrappers ------------------------------------------------------------------------


def _start(
    adapter: Adapter, instance: Any, kwargs: dict[str, Any]
) -> tuple[LlmCall | None, dict[str, Any]]:
    telemetry = _call.active()
    if telemetry is None or CURRENT_CALL.get() is not None or not is_instrumentation_enabled():
        return None, kwargs
    if adapter.official is not None and _official_active(*adapter.official):
        return None, kwargs
    return adapter.begin(telemetry, instance, dict(kwargs))


def _official_active(module_name: str, class_name: str) -> bool:
    module = sys.modules.get(module_name)
    instrumentor = getattr(getattr(module, class_name, None), "_instance", None)
    if instrumentor is None or not getattr(
        instrumentor, "_is_instrumented_by_opentelemetry", False
    ):
        return False
    warn_once(
        f"official-instrumentation:{module_name}",
        "otel-obs: %s is active, so otel-obs adds no span of its own for that client "
        "(cost is still added to its spans)",
        module_name,
    )
    return True


def _fail(call: LlmCall, error: BaseException) -> None:
    with guard("ai: record a failed LLM call"):
        call.fail(error)
        call.finish()


def _finish(adapter: Adapter, call: LlmCall, result: Any, stream: Callable[[], Any]) -> Any:
    """The caller's result: a watched stream, or ``result`` after its call has ended."""
    handed = None
    with guard("ai: read an LLM response"):
        handed = stream()
        if handed is None:
            adapter.on_response(call, result)
    if handed is None:
        with guard("ai: end an LLM call"):
            call.finish()
        return result
    return handed


def sync_wrapper(adapter: Adapter) -> Callable[..., Any]:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict[str, Any]
    ) -> Any:
        call, call_kwargs = None, kwargs
        with guard("ai: start an LLM call span"):
            call, call_kwargs = _start(adapter, instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            with call.activated():
                result = wrapped(*args, **call_kwargs)
        except BaseException as error:
            _fail(call, error)
            raise
        return _finish(adapter, call, result, lambda: adapter.wrap_stream(call, result))

    return wrapper


def async_wrapper(adapter: Adapter) -> Callable[..., Any]:
    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict[str, Any]
    ) -> Any:
        call, call_kwargs = None, kwargs
        with guard("ai: start an LLM call span"):
            call, call_kwargs = _start(adapter, instance, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        try:
            with call.activated():
                result = await wrapped(*args, **call_kwargs)
        except BaseException as error:
            _fail(call, error)
            raise
        return _finish(adapter, call, result, lambda: adapter.wrap_stream(call, result))

    return wrapper


def given(value: Any) -> bool:
    """Whether a client keyword argument was given (not missing, ``None``, omit or NOT_GIVEN)."""
    return value is not None and type(value).__name__ not in ("Omit", "NotGiven")


def server_of(base_url: Any) -> tuple[str | None, int | None]:
    """Host and port of a client's base URL (an httpx URL or a string)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(str(base_url))
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
        return parts.hostname, port
    except ValueError:
        return None, None
