"""The local LLM server's own contract: usage driven by headers, wire formats, errors."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from otel_obs.demo.llm_server import LLMServer


def post(server: LLMServer, path: str, body: dict, **headers: str) -> tuple[int, str]:
    request = urllib.request.Request(
        server.url + path,
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            **{k.replace("_", "-"): v for k, v in headers.items()},
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_usage_header_values_appear_on_the_wire(llm_server: LLMServer) -> None:
    status, text = post(
        llm_server,
        "/v1/messages",
        {"model": "claude-sonnet-4-5", "messages": []},
        x_llm_usage="input=null,cached=absent,cache_write=7,output=5",
    )

    usage = json.loads(text)["usage"]
    assert status == 200
    assert usage == {"input_tokens": None, "cache_creation_input_tokens": 7, "output_tokens": 5}


def test_default_usage_counts_request_and_reply_words(llm_server: LLMServer) -> None:
    _, text = post(
        llm_server,
        "/v1/chat/completions",
        {"model": "m", "messages": [{"role": "user", "content": "one two three"}]},
        x_llm_reply="a b",
    )

    usage = json.loads(text)["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (3, 2)


def test_gemini_stream_sends_full_usage_only_on_the_last_chunk(llm_server: LLMServer) -> None:
    _, text = post(
        llm_server,
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
        {"contents": []},
        x_llm_usage="input=10,output=4,cached=2",
    )

    chunks = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    assert [c["usageMetadata"] for c in chunks[:-1]] == [{"promptTokenCount": 10}] * (
        len(chunks) - 1
    )
    assert chunks[-1]["usageMetadata"] == {
        "promptTokenCount": 10,
        "candidatesTokenCount": 4,
        "cachedContentTokenCount": 2,
        "totalTokenCount": 14,
    }


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/v1/chat/completions", "error"),
        ("/v1/messages", "error"),
        ("/v1beta/models/g:generateContent", "error"),
    ],
)
def test_error_scenario_answers_in_the_providers_format(
    llm_server: LLMServer, path: str, key: str
) -> None:
    status, text = post(llm_server, path, {"model": "m"}, x_llm_scenario="error=429")

    assert status == 429
    assert key in json.loads(text)


def test_unknown_usage_key_is_a_400_naming_it(llm_server: LLMServer) -> None:
    status, text = post(llm_server, "/v1/responses", {"model": "m"}, x_llm_usage="tokens=3")

    assert status == 400 and "'tokens'" in text


def test_defaults_apply_when_a_request_sends_no_header() -> None:
    with LLMServer(defaults={"x-llm-usage": "input=11,output=22"}) as server:
        _, text = post(server, "/v1/responses", {"model": "m", "input": "hi"})

    assert json.loads(text)["usage"]["input_tokens"] == 11


def test_delay_scenario_holds_the_answer(llm_server: LLMServer) -> None:
    started = time.monotonic()

    post(llm_server, "/v1/responses", {"model": "m"}, x_llm_scenario="delay=0.2")

    assert time.monotonic() - started >= 0.2
