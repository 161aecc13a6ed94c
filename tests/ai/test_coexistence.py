"""Never two spans for one call, and never an exception from telemetry into the application."""

from __future__ import annotations

import logging

import pytest
from ai_support import TOLERANCE, Sdk, gemini_config, usd

from otel_obs import ai, semconv
from otel_obs.ai import usage
from otel_obs.demo.llm_server import DEFAULT_REPLY


@pytest.fixture
def official_google_instrumentation(sdk: Sdk):
    from opentelemetry.instrumentation.google_genai import GoogleGenAiSdkInstrumentor

    instrumentor = GoogleGenAiSdkInstrumentor()
    # Its declared range is google-genai<3; forced on, it still wraps the 3.x client.
    instrumentor.instrument(
        tracer_provider=sdk.tracer_provider, meter_provider=sdk.meter_provider, skip_dep_check=True
    )
    yield instrumentor
    instrumentor.uninstrument()


def test_official_google_instrumentation_active_means_one_span_priced_by_the_processor(
    sdk: Sdk, gemini_client, official_google_instrumentation
) -> None:
    gemini_client.models.generate_content(
        model="gemini-2.5-pro",
        contents="hello",
        config=gemini_config(x_llm_usage="input=100000,output=1000"),
    )

    spans = sdk.spans(scope=None)
    assert len(spans) == 1
    assert spans[0].instrumentation_scope.name != "otel_obs.ai"
    assert spans[0].attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(
        usd("0.135"), abs=TOLERANCE
    )


def test_ours_returns_once_the_official_one_is_removed(sdk: Sdk, gemini_client) -> None:
    from opentelemetry.instrumentation.google_genai import GoogleGenAiSdkInstrumentor

    instrumentor = GoogleGenAiSdkInstrumentor()
    instrumentor.instrument(tracer_provider=sdk.tracer_provider, skip_dep_check=True)
    instrumentor.uninstrument()

    gemini_client.models.generate_content(model="gemini-2.5-pro", contents="hello")

    assert [s.instrumentation_scope.name for s in sdk.spans(scope=None)] == ["otel_obs.ai"]


def test_internal_failure_never_reaches_the_caller(
    sdk: Sdk, openai_client, monkeypatch, caplog
) -> None:
    monkeypatch.delenv("OTEL_OBS_RAISE_INTERNAL_ERRORS")

    def broken(raw):
        raise RuntimeError("usage reader bug")

    monkeypatch.setattr(usage, "from_openai_chat", broken)
    with caplog.at_level(logging.WARNING, logger="otel_obs"):
        answer = openai_client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
        chunks = list(
            openai_client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )

    assert answer.choices[0].message.content == DEFAULT_REPLY
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == DEFAULT_REPLY
    assert len(sdk.spans()) == 2  # both calls still end their spans
    assert any("read an LLM response failed" in r.getMessage() for r in caplog.records)


def test_instrument_twice_still_one_span_per_call(make_sdk, openai_client) -> None:
    make_sdk()
    sdk = make_sdk()  # the latest providers win; the patches are not stacked

    openai_client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )

    assert len(sdk.spans()) == 1


def test_public_surface() -> None:
    assert sorted(ai.__all__) == [
        "Cost",
        "CostSpanProcessor",
        "LlmCallHandle",
        "ModelPrices",
        "Usage",
        "compute_cost",
        "current_llm_call",
        "instrument",
        "llm_call",
        "llm_span",
        "price_for",
        "uninstrument",
        "wrap_span_processor",
    ]
    assert all(getattr(ai, name).__doc__ for name in ai.__all__)
