"""A local LLM server that answers in the OpenAI, Anthropic and Gemini wire formats.

It lets the real ``openai``, ``anthropic`` and ``google-genai`` clients run end to end with no
network: tests and the demo point a client's base URL at it. It binds 127.0.0.1 on a free port
unless told otherwise. Every answer is deterministic, driven by the request.

Routes (JSON, and server-sent events when the request asks for a stream):

- OpenAI ``POST /v1/chat/completions`` (``stream: true``; the usage chunk with ``choices: []`` is
  sent only when ``stream_options.include_usage`` is true) and ``POST /v1/responses``
  (``stream: true`` sends ``response.created``, ``response.output_text.delta`` ... and
  ``response.completed`` carrying the usage).
- Anthropic ``POST /v1/messages`` (``stream: true`` sends ``message_start``, the content block
  events, ``message_delta`` and ``message_stop``).
- Gemini ``POST /v1beta/models/{model}:generateContent`` (also under ``/v1``) and
  ``:streamGenerateContent?alt=sse`` (usage metadata on every chunk, complete on the last).

Drive it with request headers (each client can send extra headers per call):

- ``x-llm-usage: input=1000,output=500,cached=400`` sets the usage numbers exactly as the
  provider reports them on the wire. Keys: ``input`` (OpenAI ``prompt_tokens`` and
  ``input_tokens``; Anthropic's *uncached* ``input_tokens``; Gemini ``promptTokenCount``),
  ``output``, ``cached`` (cache reads), ``cache_write`` (Anthropic
  ``cache_creation_input_tokens``), ``reasoning`` (OpenAI reasoning tokens, Gemini
  ``thoughtsTokenCount``). A value ``null`` sends JSON null; ``absent`` leaves the field out.
  Without the header: input is the number of words in the request, output the number of
  words in the reply, everything else 0.
- ``x-llm-scenario``: comma-separated ``no-usage`` (send no usage object at all),
  ``error=429`` or ``error=500`` (answer with that status and the provider's error body),
  ``delay=0.2`` (seconds before answering), ``chunk-delay=0.05`` (seconds between stream
  events).
- ``x-llm-reply``: the reply text (default ``The quick brown fox jumps over the lazy dog.``),
  streamed one word per chunk.
- ``x-llm-response-model``: the model name the response reports (default: the requested one).

``LLMServer(defaults={...})`` sets header values used when a request does not send them, so
that the demo can drive a client it does not control. ``server.requests`` keeps the decoded
JSON body and the path of each request. Run it alone with ``python -m
otel_obs.demo.llm_server --port 0``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from typing_extensions import Self

DEFAULT_REPLY = "The quick brown fox jumps over the lazy dog."
_ABSENT = object()
_USAGE_KEYS = ("input", "output", "cached", "cache_write", "reasoning")
_GEMINI_PATH = re.compile(r"^/v1(?:beta|alpha)?/models/(?P<model>[^:]+):(?P<method>\w+)$")


@dataclass
class Scenario:
    """What one request asked the server to do, read from its headers."""

    usage: dict[str, Any]
    reply: str
    response_model: str | None
    no_usage: bool = False
    error: int | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0

    @property
    def words(self) -> list[str]:
        parts = self.reply.split(" ")
        return [part if i == 0 else " " + part for i, part in enumerate(parts)]

    def value(self, key: str) -> Any:
        """The wire value for a usage key: an int, None (JSON null) or ``_ABSENT``."""
        return self.usage.get(key, 0)


@dataclass
class RecordedRequest:
    path: str
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def _parse_usage(header: str | None, request_words: int, reply_words: int) -> dict[str, Any]:
    usage: dict[str, Any] = {"input": request_words, "output": reply_words}
    for item in (header or "").split(","):
        if "=" not in item:
            continue
        key, _, raw = (part.strip() for part in item.partition("="))
        if key not in _USAGE_KEYS:
            raise ValueError(f"unknown usage key {key!r}; use one of {', '.join(_USAGE_KEYS)}")
        if raw == "null":
            usage[key] = None
        elif raw == "absent":
            usage[key] = _ABSENT
        else:
            usage[key] = int(raw)
    return usage


def _count_words(value: Any) -> int:
    """Words in every string of a request body (a deterministic stand-in for tokens)."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, Mapping):
        return sum(_count_words(v) for k, v in value.items() if k not in ("model", "role"))
    if isinstance(value, list):
        return sum(_count_words(v) for v in value)
    return 0


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not _ABSENT:
        target[key] = value


# --- OpenAI ------------------------------------------------------------------------------


def _openai_chat_usage(s: Scenario) -> dict[str, Any]:
    usage: dict[str, Any] = {}
    _put(usage, "prompt_tokens", s.value("input"))
    _put(usage, "completion_tokens", s.value("output"))
    if isinstance(s.value("input"), int) and isinstance(s.value("output"), int):
        usage["total_tokens"] = s.value("input") + s.value("output")
    details: dict[str, Any] = {}
    _put(details, "cached_tokens", s.value("cached"))
    usage["prompt_tokens_details"] = details
    completion: dict[str, Any] = {}
    _put(completion, "reasoning_tokens", s.value("reasoning"))
    usage["completion_tokens_details"] = completion
    return usage


def _openai_chat(body: dict[str, Any], s: Scenario) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "id": "chatcmpl-local-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": s.response_model or body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": s.reply, "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
    }
    if not s.no_usage:
        answer["usage"] = _openai_chat_usage(s)
    return answer


def _openai_chat_stream(body: dict[str, Any], s: Scenario) -> Iterator[tuple[str | None, Any]]:
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    model = s.response_model or body.get("model")

    def chunk(choices: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": "chatcmpl-local-1",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": choices,
        }
        if include_usage:
            out["usage"] = None
        return out

    yield (
        None,
        chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]),
    )
    for word in s.words:
        yield None, chunk([{"index": 0, "delta": {"content": word}, "finish_reason": None}])
    yield None, chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    if include_usage and not s.no_usage:
        last = chunk([])
        last["usage"] = _openai_chat_usage(s)
        yield None, last
    yield None, "[DONE]"


def _responses_usage(s: Scenario) -> dict[str, Any]:
    usage: dict[str, Any] = {}
    _put(usage, "input_tokens", s.value("input"))
    _put(usage, "output_tokens", s.value("output"))
    if isinstance(s.value("input"), int) and isinstance(s.value("output"), int):
        usage["total_tokens"] = s.value("input") + s.value("output")
    details: dict[str, Any] = {}
    _put(details, "cached_tokens", s.value("cached"))
    usage["input_tokens_details"] = details
    output_details: dict[str, Any] = {}
    _put(output_details, "reasoning_tokens", s.value("reasoning"))
    usage["output_tokens_details"] = output_details
    return usage


def _response_object(body: dict[str, Any], s: Scenario, status: str, text: str) -> dict[str, Any]:
    output = []
    if text:
        output.append(
            {
                "id": "msg_local_1",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        )
    answer: dict[str, Any] = {
        "id": "resp_local_1",
        "object": "response",
        "created_at": 1_700_000_000,
        "status": status,
        "model": s.response_model or body.get("model"),
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }
    if status == "completed" and not s.no_usage:
        answer["usage"] = _responses_usage(s)
    return answer


def _openai_responses(body: dict[str, Any], s: Scenario) -> dict[str, Any]:
    return _response_object(body, s, "completed", s.reply)


def _openai_responses_stream(body: dict[str, Any], s: Scenario) -> Iterator[tuple[str | None, Any]]:
    sequence = iter(range(1_000_000))

    def event(kind: str, **fields: Any) -> tuple[str, dict[str, Any]]:
        return kind, {"type": kind, "sequence_number": next(sequence), **fields}

    yield event("response.created", response=_response_object(body, s, "in_progress", ""))
    item = {
        "id": "msg_local_1",
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    yield event("response.output_item.added", output_index=0, item=item)
    part = {"type": "output_text", "text": "", "annotations": []}
    yield event(
        "response.content_part.added",
        item_id="msg_local_1",
        output_index=0,
        content_index=0,
        part=part,
    )
    for word in s.words:
        yield event(
            "response.output_text.delta",
            item_id="msg_local_1",
            output_index=0,
            content_index=0,
            delta=word,
            logprobs=[],
        )
    yield event(
        "response.output_text.done",
        item_id="msg_local_1",
        output_index=0,
        content_index=0,
        text=s.reply,
        logprobs=[],
    )
    yield event("response.completed", response=_response_object(body, s, "completed", s.reply))


# --- Anthropic ---------------------------------------------------------------------------


def _anthropic_usage(s: Scenario, output: Any) -> dict[str, Any]:
    usage: dict[str, Any] = {}
    _put(usage, "input_tokens", s.value("input"))
    _put(usage, "cache_creation_input_tokens", s.value("cache_write"))
    _put(usage, "cache_read_input_tokens", s.value("cached"))
    _put(usage, "output_tokens", output)
    return usage


def _anthropic_message(body: dict[str, Any], s: Scenario, text: str) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "id": "msg_local_1",
        "type": "message",
        "role": "assistant",
        "model": s.response_model or body.get("model"),
        "content": [{"type": "text", "text": text}] if text else [],
        "stop_reason": "end_turn" if text else None,
        "stop_sequence": None,
    }
    if not s.no_usage:
        answer["usage"] = _anthropic_usage(s, s.value("output"))
    return answer


def _anthropic_messages(body: dict[str, Any], s: Scenario) -> dict[str, Any]:
    return _anthropic_message(body, s, s.reply)


def _anthropic_stream(body: dict[str, Any], s: Scenario) -> Iterator[tuple[str | None, Any]]:
    start = _anthropic_message(body, s, "")
    if "usage" in start:
        start["usage"]["output_tokens"] = 1
    yield "message_start", {"type": "message_start", "message": start}
    block = {"type": "text", "text": ""}
    yield "content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}
    yield "ping", {"type": "ping"}
    for word in s.words:
        delta = {"type": "text_delta", "text": word}
        yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}
    message_delta: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
    }
    if not s.no_usage:
        usage: dict[str, Any] = {}
        _put(usage, "output_tokens", s.value("output"))
        message_delta["usage"] = usage
    yield "message_delta", message_delta
    yield "message_stop", {"type": "message_stop"}


# --- Gemini ------------------------------------------------------------------------------


def _gemini_usage(s: Scenario, final: bool) -> dict[str, Any]:
    usage: dict[str, Any] = {}
    _put(usage, "promptTokenCount", s.value("input"))
    if not final:
        return usage
    _put(usage, "candidatesTokenCount", s.value("output"))
    cached, reasoning = s.value("cached"), s.value("reasoning")
    # Gemini leaves zero counts out of its JSON; so does this server.
    if cached:
        usage["cachedContentTokenCount"] = cached
    if reasoning:
        usage["thoughtsTokenCount"] = reasoning
    parts = [
        usage.get(k) for k in ("promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount")
    ]
    usage["totalTokenCount"] = sum(p for p in parts if isinstance(p, int))
    return usage


def _gemini_response(model: str, s: Scenario, text: str, final: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {
        "content": {"role": "model", "parts": [{"text": text}]},
        "index": 0,
    }
    if final:
        candidate["finishReason"] = "STOP"
    answer: dict[str, Any] = {
        "candidates": [candidate],
        "modelVersion": s.response_model or model,
        "responseId": "gemini-local-1",
    }
    if not s.no_usage:
        answer["usageMetadata"] = _gemini_usage(s, final)
    return answer


def _gemini_stream(model: str, s: Scenario) -> Iterator[tuple[str | None, Any]]:
    words = s.words
    for index, word in enumerate(words):
        yield None, _gemini_response(model, s, word, final=index == len(words) - 1)


# --- Errors ------------------------------------------------------------------------------

_ERROR_NAMES = {429: ("rate_limit_error", "RESOURCE_EXHAUSTED"), 500: ("api_error", "INTERNAL")}


def _error_body(api: str, status: int) -> dict[str, Any]:
    kind, google_status = _ERROR_NAMES.get(status, ("api_error", "UNKNOWN"))
    message = f"local server answered {status} as asked"
    if api == "anthropic":
        return {"type": "error", "error": {"type": kind, "message": message}}
    if api == "gemini":
        return {"error": {"code": status, "message": message, "status": google_status}}
    return {"error": {"message": message, "type": kind, "param": None, "code": kind}}


# --- HTTP --------------------------------------------------------------------------------


class LLMServer:
    """The server; a context manager. ``url`` is its base URL, e.g. ``http://127.0.0.1:PORT``."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, defaults: Mapping[str, str] | None = None
    ):
        self.defaults = {k.lower(): v for k, v in (defaults or {}).items()}
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self._server.server_address[0]}:{self.port}"

    def start(self) -> LLMServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="llm-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, path: str, body: Any, headers: Mapping[str, str]) -> None:
        kept = {k.lower(): v for k, v in headers.items() if k.lower().startswith("x-llm-")}
        with self._lock:
            self.requests.append(RecordedRequest(path=path, body=body, headers=kept))

    def _scenario(self, headers: Mapping[str, str], body: Any) -> Scenario:
        def header(name: str) -> str | None:
            return headers.get(name) or self.defaults.get(name)

        reply = header("x-llm-reply") or DEFAULT_REPLY
        usage = _parse_usage(header("x-llm-usage"), _count_words(body), len(reply.split()))
        scenario = Scenario(usage=usage, reply=reply, response_model=header("x-llm-response-model"))
        for item in (header("x-llm-scenario") or "").split(","):
            name, _, value = (part.strip() for part in item.partition("="))
            if name == "no-usage":
                scenario.no_usage = True
            elif name == "error":
                scenario.error = int(value)
            elif name == "delay":
                scenario.delay = float(value)
            elif name == "chunk-delay":
                scenario.chunk_delay = float(value)
        return scenario

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    self._json(400, {"error": {"message": "request body is not JSON"}})
                    return
                server._record(self.path, body, self.headers)
                try:
                    scenario = server._scenario(self.headers, body)
                except ValueError as error:
                    self._json(400, {"error": {"message": str(error)}})
                    return
                self._route(body, scenario)

            def _route(self, body: Any, s: Scenario) -> None:
                path, _, query = self.path.partition("?")
                if s.delay:
                    time.sleep(s.delay)
                gemini = _GEMINI_PATH.match(path)
                api = "gemini" if gemini else ("anthropic" if path == "/v1/messages" else "openai")
                if s.error:
                    self._json(s.error, _error_body(api, s.error))
                    return
                stream = bool(body.get("stream"))
                if path == "/v1/chat/completions":
                    self._answer(stream, _openai_chat_stream if stream else _openai_chat, body, s)
                elif path == "/v1/responses":
                    self._answer(
                        stream, _openai_responses_stream if stream else _openai_responses, body, s
                    )
                elif path == "/v1/messages":
                    self._answer(
                        stream, _anthropic_stream if stream else _anthropic_messages, body, s
                    )
                elif gemini and gemini["method"] == "generateContent":
                    self._json(200, _gemini_response(gemini["model"], s, s.reply, final=True))
                elif gemini and gemini["method"] == "streamGenerateContent" and "alt=sse" in query:
                    self._sse(_gemini_stream(gemini["model"], s), s)
                else:
                    self._json(404, {"error": {"message": f"no route for {path}"}})

            def _answer(self, stream: bool, produce: Any, body: Any, s: Scenario) -> None:
                if stream:
                    self._sse(produce(body, s), s)
                else:
                    self._json(200, produce(body, s))

            def _json(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _sse(self, events: Iterator[tuple[str | None, Any]], s: Scenario) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                try:
                    for index, (name, data) in enumerate(events):
                        if index and s.chunk_delay:
                            time.sleep(s.chunk_delay)
                        text = data if isinstance(data, str) else json.dumps(data)
                        frame = (f"event: {name}\n" if name else "") + f"data: {text}\n\n"
                        self.wfile.write(frame.encode())
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: an abandoned stream

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def main(argv: list[str] | None = None) -> int:
    """Serve in the foreground, printing the base URL."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with LLMServer(port=args.port) as server:
        print(f"listening on {server.url}", flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
