"""Field cases of partial or missed masking: emails (B16), auth headers (B18), keys (B19)."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from otel_obs.redact import RedactingLogExporter, RedactingSpanExporter, Redactor, marker


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor()


# --- B16: emails ------------------------------------------------------------------------

B16_LINES = [
    ("contact dana.whitfield+billing@example.co.uk today", "contact [REDACTED:email] today"),
    ('"ops-alerts@mail.fixture-corp.example"', '"[REDACTED:email]"'),
    ("""{"email":"j_o'neil@example.org"}""", '{"email":"[REDACTED:email]"}'),
    ("Reply-To: <li.wei+2024@sub.example.com.au>", "Reply-To: <[REDACTED:email]>"),
]


@pytest.mark.parametrize(("text", "expected"), B16_LINES)
def test_b16_email_replaced_entirely(redactor, text, expected):
    masked = redactor.redact_text(text)

    assert masked == expected
    for fragment in ("@", "+billing", ".uk", ".au", "dana", "neil", "li.wei", "ops-alerts"):
        assert fragment not in masked


def test_b16_emails_in_span_attributes(redactor):
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(spans, redactor)))

    with provider.get_tracer("t").start_as_current_span("signup") as span:
        for index, (text, _) in enumerate(B16_LINES):
            span.set_attribute(f"app.note.{index}", text)

    attributes = spans.get_finished_spans()[0].attributes
    assert [attributes[f"app.note.{i}"] for i in range(4)] == [
        expected for _, expected in B16_LINES
    ]


def test_b16_user_at_host_rule(redactor):
    assert redactor.redact_text("root@buildbox:/srv# ls") == "root@buildbox:/srv# ls"


# --- B18: Authorization headers ---------------------------------------------------------

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJmaXh0dXJlIn0.ZmFrZXNpZw"
B18_HEADERS = {
    "Authorization": f"Bearer {JWT}",
    "authorization": "Basic ZmFrZTpmYWtl",
    "Cookie": "session=fake-session-123",
    "X-Api-Key": "fixture-key-abc",
}
B18_LINE = f"calling upstream with Authorization: Bearer {JWT}"
B18_LEAKS = ("eyJhbGci", "ZmFrZTpmYWtl", "fake-session-123", "fixture-key-abc")


def _assert_no_leak(text: str) -> None:
    for leak in B18_LEAKS:
        assert leak not in text


def test_b18_header_attributes_mask_the_credential_not_only_the_scheme(redactor):
    captured = {
        f"http.request.header.{name.lower()}": (value,) for name, value in B18_HEADERS.items()
    }
    masked = redactor.redact_attributes({**B18_HEADERS, **captured})

    _assert_no_leak(json.dumps(masked))
    assert masked["Authorization"] == "Bearer [REDACTED:credential]"
    assert masked["authorization"] == "Basic [REDACTED:credential]"
    assert masked["http.request.header.x-api-key"] == ("[REDACTED:secret]",)


def test_b18_log_line_keeps_scheme_and_masks_credential(redactor):
    assert (
        redactor.redact_text(B18_LINE)
        == "calling upstream with Authorization: Bearer [REDACTED:credential]"
    )


def test_b18_bare_jwt_is_masked(redactor):
    assert redactor.redact_text(f"got {JWT} back") == "got [REDACTED:jwt] back"


def test_b18_nothing_leaks_in_exported_spans_events_and_logs(redactor):
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(spans, redactor)))
    records = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(RedactingLogExporter(records, redactor))
    )

    with tracer_provider.get_tracer("t").start_as_current_span("upstream") as span:
        for name, value in B18_HEADERS.items():
            span.set_attribute(f"http.request.header.{name.lower()}", (value,))
        span.add_event("request", {"line": B18_LINE, **B18_HEADERS})
        span.set_status(Status(StatusCode.ERROR, B18_LINE))
    logger_provider.get_logger("t").emit(body=B18_LINE, attributes=dict(B18_HEADERS))

    span_data = spans.get_finished_spans()[0].to_json()
    _assert_no_leak(span_data)
    log_data = records.get_finished_logs()[0].to_json()
    _assert_no_leak(log_data)
    assert (
        "Bearer [REDACTED:credential]" in span_data and "Bearer [REDACTED:credential]" in log_data
    )


# --- B19: provider keys in five contexts ------------------------------------------------

B19_KEYS = [
    "sk-proj-FAKEfake0123456789_abcDEF-ghiJKLmnoPQRstuVWX0123456789yz_AbCdEf",
    "sk-svcacct-FAKE_0123456789-abcdefghijklmnopqrstuvwxyzABCDEF",
    "sk-ant-api03-FAKEfake0123456789-abcdefghijklmnopqrstuv_wxyzAB-CDEFGH",
    "AIzaSyFAKEfake0123456789abcdefghijklmn",
]
B19_CONTEXTS = {
    "a-bare": "{key}",
    "b-sentence": "the request used {key} and failed",
    "c-env": "OPENAI_API_KEY={key}",
    "d-json": '{{"api_key":"{key}"}}',
    "e-exception": "AuthenticationError('Incorrect API key provided: {key}. Check it.')",
}


def _random_part_survives(key: str, text: str) -> bool:
    return any(key[i : i + 8] in text for i in range(len(key) - 7))


@pytest.mark.parametrize("key", B19_KEYS)
@pytest.mark.parametrize("context", sorted(B19_CONTEXTS))
def test_b19_whole_key_masked_and_surrounding_text_kept(redactor, key, context):
    template = B19_CONTEXTS[context]
    text = template.format(key=key)

    masked = redactor.redact_text(text)

    assert not _random_part_survives(key, masked)
    before, after = template.split("{key}")
    before, after = before.replace("{{", "{"), after.replace("}}", "}")
    assert masked.startswith(before) and masked.endswith(after)
    assert masked[len(before) : len(masked) - len(after)] in (marker("api_key"), marker("secret"))


def test_b19_key_in_an_exception_recorded_on_a_span(redactor):
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(spans, redactor)))

    with pytest.raises(RuntimeError), provider.get_tracer("t").start_as_current_span("call"):
        raise RuntimeError(f"Incorrect API key provided: {B19_KEYS[0]}")

    event = spans.get_finished_spans()[0].events[0]
    assert event.attributes["exception.message"] == "Incorrect API key provided: [REDACTED:api_key]"
    assert not _random_part_survives(B19_KEYS[0], event.attributes["exception.stacktrace"])


@pytest.mark.parametrize(
    "word", ["sk-learn", "task-proj-12", "pip install sk-learn", "see task-proj-12 notes"]
)
def test_b19_negative_controls_untouched(redactor, word):
    assert redactor.redact_text(word) == word
