"""Fixtures for the AI telemetry tests: the SDK wired in memory, the local LLM server, clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ai_support import Sdk, build_sdk
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

from otel_obs import _diag, ai
from otel_obs.demo.llm_server import LLMServer


@pytest.fixture(autouse=True)
def _raise_internal_errors(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OTEL_OBS_RAISE_INTERNAL_ERRORS", "true")
    _diag.reset_for_tests()
    yield
    _diag.reset_for_tests()


@pytest.fixture
def make_sdk() -> Iterator[Callable[..., Sdk]]:
    built: list[Sdk] = []

    def make(**kwargs: Any) -> Sdk:
        sdk = build_sdk(**kwargs)
        built.append(sdk)
        return sdk

    yield make
    ai.uninstrument()
    for sdk in built:
        sdk.tracer_provider.shutdown()
        sdk.meter_provider.shutdown()


@pytest.fixture
def sdk(make_sdk: Callable[..., Sdk]) -> Sdk:
    return make_sdk()


@pytest.fixture
def unsampled_sdk(make_sdk: Callable[..., Sdk]) -> Sdk:
    return make_sdk(sampler=TraceIdRatioBased(0.0))


@pytest.fixture(scope="session")
def llm_server() -> Iterator[LLMServer]:
    with LLMServer() as server:
        yield server


@pytest.fixture
def openai_client(llm_server: LLMServer) -> Any:
    import openai

    return openai.OpenAI(base_url=llm_server.url + "/v1", api_key="test-key", max_retries=0)


@pytest.fixture
def async_openai_client(llm_server: LLMServer) -> Any:
    import openai

    return openai.AsyncOpenAI(base_url=llm_server.url + "/v1", api_key="test-key", max_retries=0)


@pytest.fixture
def anthropic_client(llm_server: LLMServer) -> Any:
    import anthropic

    return anthropic.Anthropic(base_url=llm_server.url, api_key="test-key", max_retries=0)


@pytest.fixture
def async_anthropic_client(llm_server: LLMServer) -> Any:
    import anthropic

    return anthropic.AsyncAnthropic(base_url=llm_server.url, api_key="test-key", max_retries=0)


@pytest.fixture
def gemini_client(llm_server: LLMServer) -> Any:
    from google import genai
    from google.genai import types

    options = types.HttpOptions(
        base_url=llm_server.url, retry_options=types.HttpRetryOptions(attempts=1)
    )
    return genai.Client(api_key="test-key", http_options=options)
