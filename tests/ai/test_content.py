"""Message content: off by default; when on, every text passes the masking engine."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import types
from typing import ClassVar

import pytest
from ai_support import llm_headers

from otel_obs import semconv

PROMPT = "Email dana.whitfield+billing@example.co.uk the pangram"
MESSAGES = [{"role": "system", "content": "Be brief"}, {"role": "user", "content": PROMPT}]
EMAIL = re.compile(r"\S+@\S+\.\w+")


class RecordingRedactor:
    """A stand-in masking engine with the contract's shape, recording what it was given."""

    seen: ClassVar[list[str]] = []

    @classmethod
    def from_settings(cls, settings):
        return cls()

    def redact_text(self, text: str) -> str:
        RecordingRedactor.seen.append(text)
        return EMAIL.sub("[EMAIL]", text)


@pytest.fixture
def fake_masking_engine(monkeypatch: pytest.MonkeyPatch) -> type[RecordingRedactor]:
    module = types.ModuleType("otel_obs.redact")
    module.Redactor = RecordingRedactor
    monkeypatch.setitem(sys.modules, "otel_obs.redact", module)
    RecordingRedactor.seen = []
    return RecordingRedactor


def test_content_is_off_by_default(sdk, openai_client) -> None:
    openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    assert semconv.GEN_AI_INPUT_MESSAGES not in sdk.span().attributes
    assert semconv.GEN_AI_OUTPUT_MESSAGES not in sdk.span().attributes


def test_captured_content_passes_the_masking_engine(
    make_sdk, openai_client, fake_masking_engine
) -> None:
    sdk = make_sdk(capture_message_content=True)
    reply = "Sent to dana.whitfield+billing@example.co.uk"

    openai_client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, extra_headers=llm_headers(x_llm_reply=reply)
    )

    attributes = sdk.span().attributes
    assert json.loads(attributes[semconv.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "Email [EMAIL] the pangram"}]},
    ]
    assert json.loads(attributes[semconv.GEN_AI_OUTPUT_MESSAGES]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "Sent to [EMAIL]"}],
            "finish_reason": "stop",
        }
    ]
    assert PROMPT in fake_masking_engine.seen and reply in fake_masking_engine.seen


def test_streamed_output_is_captured_and_masked(
    make_sdk, anthropic_client, fake_masking_engine
) -> None:
    sdk = make_sdk(capture_message_content=True)

    with anthropic_client.messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=64,
        messages=[{"role": "user", "content": PROMPT}],
        extra_headers=llm_headers(x_llm_reply="Done: li.wei@example.com"),
    ) as stream:
        stream.until_done()

    output = json.loads(sdk.span().attributes[semconv.GEN_AI_OUTPUT_MESSAGES])
    assert output[0]["parts"][0]["content"] == "Done: [EMAIL]"


def test_no_content_without_a_masking_engine(make_sdk, openai_client, monkeypatch, caplog) -> None:
    monkeypatch.setitem(sys.modules, "otel_obs.redact", None)  # the import fails
    sdk = make_sdk(capture_message_content=True)

    openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    assert semconv.GEN_AI_INPUT_MESSAGES not in sdk.span().attributes
    assert semconv.GEN_AI_OUTPUT_MESSAGES not in sdk.span().attributes
    assert any("masking engine is unavailable" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(
    importlib.util.find_spec("otel_obs.redact") is None, reason="the masking engine is not built"
)
def test_the_real_masking_engine_masks_prompts(make_sdk, openai_client) -> None:
    sdk = make_sdk(capture_message_content=True)
    key = "sk-proj-FAKEfake0123456789_abcDEF-ghiJKLmnoPQRstuVWX0123456789yz_AbCdEf"

    openai_client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": f"{PROMPT} with key {key}"}]
    )

    captured = sdk.span().attributes[semconv.GEN_AI_INPUT_MESSAGES]
    assert "dana.whitfield" not in captured and "0123456789_abcDEF" not in captured
