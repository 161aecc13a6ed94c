"""Message content on GenAI spans: off by default, and always masked when on.

``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`` turns capture on. Every captured
text passes the masking engine (``otel_obs.redact``) before it reaches a span; when that
engine cannot be loaded, nothing is captured rather than anything unmasked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from otel_obs._diag import warn_once
from otel_obs._guard import guard

# One attribute holds at most this many characters of JSON; the rest is cut.
MAX_ATTRIBUTE_CHARS = 32_768


class ContentCapture:
    """Turns message texts into masked ``gen_ai.*.messages`` attribute values."""

    def __init__(self, redactor: Any):
        self._redactor = redactor

    @classmethod
    def from_settings(cls, settings: Any) -> ContentCapture | None:
        """A capture for ``settings``, or ``None`` when capture is off or cannot be masked."""
        if not getattr(settings, "capture_message_content", False):
            return None
        redactor = None
        try:
            from otel_obs.redact import Redactor
        except ImportError:
            Redactor = None
        if Redactor is not None:
            with guard("ai: load the masking engine for message content"):
                redactor = Redactor.from_settings(settings)
        if redactor is None or not hasattr(redactor, "redact_text"):
            warn_once(
                "ai-content-no-redactor",
                "otel-obs: GenAI message content is not captured: "
                "the masking engine is unavailable",
            )
            return None
        return cls(redactor)

    def text(self, value: Any) -> str:
        return str(self._redactor.redact_text(value if isinstance(value, str) else str(value)))

    def messages(
        self, messages: Iterable[tuple[str, str]], finish_reason: str | None = None
    ) -> str:
        """The conventions' message list (role and text parts) as one masked JSON string."""
        out = []
        for role, text in messages:
            message: dict[str, Any] = {
                "role": role,
                "parts": [{"type": "text", "content": self.text(text)}],
            }
            if finish_reason is not None:
                message["finish_reason"] = finish_reason
            out.append(message)
        encoded = json.dumps(out, ensure_ascii=False)
        return encoded[:MAX_ATTRIBUTE_CHARS]


def text_of(content: Any) -> str:
    """The text in a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        return str(content.get("text") or content.get("content") or "")
    if isinstance(content, (list, tuple)):
        return "".join(text_of(part) for part in content)
    text = getattr(content, "text", None)
    return text if isinstance(text, str) else ""
