"""Ad copy and video scripts written by LLMs, through the real OpenAI, Anthropic and Google clients.

The sample service talks to the local LLM server (``ADPLATFORM_LLM_URL``), which answers in
each provider's wire format and reports the token usage it is asked to report in the
``x-llm-usage`` header. ``PromptCache`` decides those numbers the way each provider's prompt
cache behaves, so that cache writes and reads show up on the spans and in the cost metrics:

- Anthropic caches a prompt prefix marked with ``cache_control``: the first call writes it,
  later calls read it, and ``input_tokens`` counts only the uncached rest.
- OpenAI caches long prompts by itself, in steps of 128 tokens, once one call has sent them.
- Gemini 2.5 models cache a repeated prefix implicitly.

Token counts are word counts, the same stand-in the local server uses by default.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from dataclasses import dataclass
from typing import Any

# Imported up front: a worker's pool children inherit them, and no request pays for the import.
from anthropic import AsyncAnthropic
from google import genai
from google.genai import types
from openai import AsyncOpenAI, OpenAI

OPENAI_CHAT_MODEL = "gpt-4o-mini"
OPENAI_RESPONSES_MODEL = "gpt-4.1-mini"
OPENAI_SCRIPT_MODEL = "gpt-4o"
ANTHROPIC_MODEL = "claude-sonnet-4-5"
ANTHROPIC_FAST_MODEL = "claude-haiku-4-5"
GEMINI_MODEL = "gemini-2.5-flash"

# Local keys in each provider's format: the clients insist on one, the local server ignores it.
_API_KEYS = {
    "openai": "sk-local-demo-key-not-secret",
    "anthropic": "sk-ant-local-demo-key-not-secret",
    "gemini": "local-demo-key",
}

SIMULATIONS = {
    "rate_limit": "error=429",
    "server_error": "error=500",
    "slow": "delay=0.6",
}

_BRAND_RULES = (
    "Write in a warm, confident voice.",
    "Lead with the benefit the customer gets, never with the product's features.",
    "Keep every headline under eight words and every body line under twenty.",
    "Name the brand once, near the end, and never in capital letters.",
    "Avoid superlatives the legal team cannot prove, such as best, fastest or cheapest.",
    "Use the second person and the present tense.",
    "End with one clear call to action that matches the platform's button.",
    "Respect each platform's tone: playful on short video, precise on professional networks.",
)


def brand_guide() -> str:
    """The long, fixed system prompt every copy request starts with: the cacheable prefix."""
    sections = []
    for number in range(1, 25):
        rules = " ".join(_BRAND_RULES[(number + i) % len(_BRAND_RULES)] for i in range(6))
        sections.append(f"Section {number} of the brand guide. {rules}")
    return "\n".join(sections)


BRAND_GUIDE = brand_guide()


def words(text: str) -> int:
    return len(text.split())


def llm_url() -> str:
    return os.environ.get("ADPLATFORM_LLM_URL", "http://127.0.0.1:8765").rstrip("/")


@dataclass(frozen=True)
class Copy:
    provider: str
    model: str
    text: str
    streamed: bool


class PromptCache:
    """Which prompt prefixes each provider has cached, and the usage a call then reports."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def _first_time(self, provider: str, model: str, prefix: str) -> bool:
        key = (provider, model, hashlib.sha256(prefix.encode()).hexdigest())
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
            return True

    def usage(self, provider: str, model: str, prefix: str, rest: str, reply: str) -> str:
        """The ``x-llm-usage`` header value for one call, as the provider would report it."""
        prefix_tokens, rest_tokens = words(prefix), words(rest)
        first = self._first_time(provider, model, prefix)
        output = f"output={words(reply)}"
        if provider == "anthropic":
            cache = f"cache_write={prefix_tokens}" if first else f"cached={prefix_tokens}"
            return f"input={rest_tokens},{cache},{output}"
        cached = 0 if first else prefix_tokens
        if provider == "openai":
            cached = cached // 128 * 128
        return f"input={prefix_tokens + rest_tokens},cached={cached},{output}"


prompt_cache = PromptCache()


def ad_copy_text(campaign: dict[str, Any]) -> str:
    """The reply the local server sends: deterministic copy for this campaign."""
    digest = int(hashlib.sha256(campaign["id"].encode()).hexdigest(), 16)
    hooks = (
        "Your next customer is scrolling right now.",
        "Stop guessing what works.",
        "Small budget, big reach.",
        "Turn browsers into buyers today.",
    )
    calls = ("Learn more", "Shop now", "Sign up", "Get a quote")
    return (
        f"{hooks[digest % len(hooks)]} {campaign['name']} puts your offer in front of the "
        f"people who want it on {campaign['platform']}, at a price you set. "
        f"{calls[digest // 7 % len(calls)]}."
    )


def _headers(usage: str, reply: str, simulate: str | None) -> dict[str, str]:
    headers = {"x-llm-usage": usage, "x-llm-reply": reply}
    if simulate:
        headers["x-llm-scenario"] = SIMULATIONS[simulate]
    return headers


def _brief(campaign: dict[str, Any]) -> str:
    return (
        f"Write the ad copy for campaign {campaign['name']} on {campaign['platform']}, "
        f"daily budget {campaign['daily_budget']} USD, audience tier {campaign['tier']}."
    )


class Copywriter:
    """Async clients of the three providers, created once per process."""

    def __init__(self, base_url: str | None = None) -> None:
        self.base_url = base_url or llm_url()
        self._openai: Any = None
        self._anthropic: Any = None
        self._gemini: Any = None

    @property
    def openai(self) -> Any:
        if self._openai is None:
            # No retries: a 429 or 500 from the provider is shown as it is.
            self._openai = AsyncOpenAI(
                api_key=_API_KEYS["openai"], base_url=f"{self.base_url}/v1", max_retries=0
            )
        return self._openai

    @property
    def anthropic(self) -> Any:
        if self._anthropic is None:
            self._anthropic = AsyncAnthropic(
                api_key=_API_KEYS["anthropic"], base_url=self.base_url, max_retries=0
            )
        return self._anthropic

    @property
    def gemini(self) -> Any:
        if self._gemini is None:
            self._gemini = genai.Client(
                api_key=_API_KEYS["gemini"],
                http_options=types.HttpOptions(
                    base_url=self.base_url, retry_options=types.HttpRetryOptions(attempts=1)
                ),
            )
        return self._gemini

    async def write(
        self,
        campaign: dict[str, Any],
        provider: str,
        *,
        api: str = "chat",
        stream: bool = False,
        simulate: str | None = None,
    ) -> Copy:
        reply = ad_copy_text(campaign)
        brief = _brief(campaign)
        if provider == "openai" and api == "responses":
            return await self._openai_responses(brief, reply, stream, simulate)
        if provider == "openai":
            return await self._openai_chat(brief, reply, stream, simulate)
        if provider == "anthropic":
            return await self._anthropic_messages(brief, reply, stream, simulate)
        if provider == "gemini":
            return await self._gemini_generate(brief, reply, stream, simulate)
        raise ValueError(f"unknown provider {provider!r}")

    async def _openai_chat(
        self, brief: str, reply: str, stream: bool, simulate: str | None
    ) -> Copy:
        model = OPENAI_CHAT_MODEL
        usage = prompt_cache.usage("openai", model, BRAND_GUIDE, brief, reply)
        messages = [
            {"role": "system", "content": BRAND_GUIDE},
            {"role": "user", "content": brief},
        ]
        headers = _headers(usage, reply, simulate)
        if not stream:
            answer = await self.openai.chat.completions.create(
                model=model, messages=messages, extra_headers=headers
            )
            return Copy("openai", model, answer.choices[0].message.content or "", False)

        chunks = await self.openai.chat.completions.create(
            model=model,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=headers,
        )
        parts = [c.choices[0].delta.content or "" async for c in chunks if c.choices]
        return Copy("openai", model, "".join(parts), True)

    async def _openai_responses(
        self, brief: str, reply: str, stream: bool, simulate: str | None
    ) -> Copy:
        model = OPENAI_RESPONSES_MODEL
        usage = prompt_cache.usage("openai", model, BRAND_GUIDE, brief, reply)
        headers = _headers(usage, reply, simulate)
        if not stream:
            answer = await self.openai.responses.create(
                model=model, instructions=BRAND_GUIDE, input=brief, extra_headers=headers
            )
            return Copy("openai", model, answer.output_text, False)

        events = await self.openai.responses.create(
            model=model, instructions=BRAND_GUIDE, input=brief, stream=True, extra_headers=headers
        )
        parts = [e.delta async for e in events if e.type == "response.output_text.delta"]
        return Copy("openai", model, "".join(parts), True)

    async def _anthropic_messages(
        self, brief: str, reply: str, stream: bool, simulate: str | None
    ) -> Copy:
        model = ANTHROPIC_FAST_MODEL if stream else ANTHROPIC_MODEL
        usage = prompt_cache.usage("anthropic", model, BRAND_GUIDE, brief, reply)
        # The brand guide is the prefix Anthropic caches: marked with cache_control.
        system = [{"type": "text", "text": BRAND_GUIDE, "cache_control": {"type": "ephemeral"}}]
        arguments: dict[str, Any] = {
            "model": model,
            "max_tokens": 400,
            "system": system,
            "messages": [{"role": "user", "content": brief}],
            "extra_headers": _headers(usage, reply, simulate),
        }
        if not stream:
            answer = await self.anthropic.messages.create(**arguments)
            return Copy("anthropic", model, "".join(b.text for b in answer.content), False)

        async with self.anthropic.messages.stream(**arguments) as events:
            parts = [text async for text in events.text_stream]
        return Copy("anthropic", model, "".join(parts), True)

    async def _gemini_generate(
        self, brief: str, reply: str, stream: bool, simulate: str | None
    ) -> Copy:
        model = GEMINI_MODEL
        usage = prompt_cache.usage("gemini", model, BRAND_GUIDE, brief, reply)
        config = types.GenerateContentConfig(
            system_instruction=BRAND_GUIDE,
            http_options=types.HttpOptions(headers=_headers(usage, reply, simulate)),
        )
        models = self.gemini.aio.models
        if not stream:
            answer = await models.generate_content(model=model, contents=brief, config=config)
            return Copy("gemini", model, answer.text or "", False)

        chunks = await models.generate_content_stream(model=model, contents=brief, config=config)
        parts = [chunk.text or "" async for chunk in chunks]
        return Copy("gemini", model, "".join(parts), True)


@functools.lru_cache(maxsize=1)
def _sync_clients() -> tuple[OpenAI, genai.Client]:
    """The worker's clients, made on first use in each process (pool children included)."""
    base_url = llm_url()
    openai_client = OpenAI(api_key=_API_KEYS["openai"], base_url=f"{base_url}/v1", max_retries=0)
    gemini_client = genai.Client(
        api_key=_API_KEYS["gemini"],
        http_options=types.HttpOptions(
            base_url=base_url, retry_options=types.HttpRetryOptions(attempts=1)
        ),
    )
    return openai_client, gemini_client


def write_video_script(campaign: dict[str, Any], attempt: int) -> dict[str, str]:
    """The two synchronous LLM calls of a video generation: a script, then a shot list."""
    openai_client, gemini_client = _sync_clients()
    brief = f"Write a 15 second video script for {campaign['name']} on {campaign['platform']}."
    script_reply = (
        f"Scene one: {ad_copy_text(campaign)} Scene two: the logo, the offer, the button."
    )
    usage = prompt_cache.usage("openai", OPENAI_SCRIPT_MODEL, BRAND_GUIDE, brief, script_reply)
    script = openai_client.chat.completions.create(
        model=OPENAI_SCRIPT_MODEL,
        messages=[{"role": "system", "content": BRAND_GUIDE}, {"role": "user", "content": brief}],
        extra_headers=_headers(usage, script_reply, None),
    )
    text = script.choices[0].message.content or ""

    shots_reply = "Wide shot of a happy customer. Close-up of the product. End card with logo."
    prompt = f"Turn this script into a shot list (attempt {attempt}): {text}"
    usage = f"input={words(prompt)},output={words(shots_reply)}"
    shots = gemini_client.models.generate_content(
        model=GEMINI_MODEL,
        contents=prompt,
        config=types.GenerateContentConfig(
            http_options=types.HttpOptions(headers=_headers(usage, shots_reply, None))
        ),
    )
    return {"script": text, "shots": shots.text or ""}
