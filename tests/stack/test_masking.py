"""Masking in otelcol-obs: what leaves the Collector, read back from its file export."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from . import otlp

pytestmark = pytest.mark.real

CORPUS = Path(__file__).resolve().parents[1] / "data" / "pii" / "field-corpus.jsonl"


def _send_logs(stack, records: list[dict]) -> list[dict]:
    """Send one export request; return those records as the Collector exported them."""
    batch = uuid.uuid4().hex
    for index, record in enumerate(records):
        record.setdefault("attributes", {})["test.batch"] = batch
        record["attributes"]["test.index"] = index
    status = otlp.post(stack.urls["otlp_http"], "logs", otlp.logs_request(records))
    assert status == 200

    path = stack.export_dir / "logs.jsonl"

    def exported() -> list[dict]:
        return [r for r in otlp.file_logs(path) if r["attributes"].get("test.batch") == batch]

    assert otlp.wait_until(lambda: len(exported()) >= len(records), timeout=15)
    return sorted(exported(), key=lambda r: r["attributes"]["test.index"])


def test_mixed_body_batch_loses_no_record_and_masks_string_and_map_bodies(stack):
    records = [
        {"body": "login from dana.whitfield+billing@example.co.uk"},
        {"body": {"event": "login", "email": "li.wei@example.com"}},
        {"body": None},
        {"body": 42},
    ]

    out = _send_logs(stack, records)

    assert [r["body"] for r in out] == [
        "login from [REDACTED:email]",
        {"event": "login", "email": "[REDACTED:email]"},
        None,
        42,
    ]


def test_attributes_are_masked_by_content_and_by_sensitive_key(stack):
    token = "sk-proj-" + "Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6"
    records = [
        {
            "body": "checkout",
            "attributes": {
                "customer": "card 4111 1111 1111 1111 on file",
                "contact": "+33 6 18 39 60 84",
                "password": "hunter2-but-longer",
                "provider.key": token,
                "order.id": "130966",
            },
        }
    ]

    attributes = _send_logs(stack, records)[0]["attributes"]

    assert attributes["customer"] == "card [REDACTED:card] on file"
    assert attributes["contact"] == "[REDACTED:phone]"
    assert attributes["password"] == "[REDACTED:password]"
    assert attributes["provider.key"] == "[REDACTED:api_key]"
    assert attributes["order.id"] == "130966"


def test_trace_id_stays_on_the_record(stack):
    trace_id = os.urandom(16).hex()

    out = _send_logs(stack, [{"body": "payment accepted", "trace_id": trace_id}])

    assert out[0]["trace_id"] == trace_id


def test_every_secret_of_the_labelled_corpus_is_masked_and_clean_lines_are_kept(stack):
    corpus = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    records = [{"body": entry["text"]} for entry in corpus]

    out = _send_logs(stack, records)

    leaked = [
        (entry["category"], record["body"])
        for entry, record in zip(corpus, out)
        if any(secret in record["body"] for secret in entry["secrets"])
    ]
    clean = [(entry, record) for entry, record in zip(corpus, out) if entry["category"] == "clean"]
    altered = [entry["text"] for entry, record in clean if record["body"] != entry["text"]]
    assert leaked == []
    assert len(clean) > 100 and len(altered) <= 0.01 * len(clean), altered


def test_span_attributes_and_captured_headers_are_masked(stack):
    name = f"span-{uuid.uuid4().hex}"
    spans = [
        {
            "name": name,
            "attributes": {
                "enduser.email": "fatima_haddad52@example.com",
                "http.request.header.authorization": "Bearer fq0fjzLczbttOofL9H2WjQ5TY4MyWuUF",
                "db.statement": "connect postgresql://app:remz2mUKEsjMRU&@db.internal:5432/ads",
                "http.route": "/api/v1/ads/{ad_id}",
            },
        }
    ]
    assert otlp.post(stack.urls["otlp_http"], "traces", otlp.spans_request(spans)) == 200
    path = stack.export_dir / "traces.jsonl"

    def exported() -> list[dict]:
        return [s for s in otlp.file_spans(path) if s["name"] == name]

    assert otlp.wait_until(lambda: len(exported()) == 1, timeout=15)
    attributes = exported()[0]["attributes"]

    assert attributes == {
        "enduser.email": "[REDACTED:email]",
        "http.request.header.authorization": "[REDACTED:secret]",
        "db.statement": "connect postgresql://app:[REDACTED:password]@db.internal:5432/ads",
        "http.route": "/api/v1/ads/{ad_id}",
    }
