"""Raw OTLP/HTTP requests with exact contents, and readers for what the Collector wrote.

The SDK decides how records are batched; these helpers build one export request by hand
(protobuf, as the SDK sends it) so a test controls every record in a batch, and read back
the OTLP/JSON lines that the Collector's file exporter writes.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

_UNSET = object()


def any_value(value: Any) -> AnyValue:
    """Return ``value`` as an OTLP AnyValue; ``None`` gives an empty one (no body)."""
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=key_values(value)))
    return AnyValue(string_value=str(value))


def key_values(attributes: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=key, value=any_value(value)) for key, value in attributes.items()]


def _resource(service: str, extra: dict[str, Any] | None = None) -> Resource:
    return Resource(attributes=key_values({"service.name": service, **(extra or {})}))


def logs_request(
    records: Iterable[dict[str, Any]],
    service: str = "stack-test",
    resource: dict[str, Any] | None = None,
) -> bytes:
    """One export request; each record is a dict with body, attributes, severity, trace_id."""
    now = time.time_ns()
    log_records = []
    for record in records:
        log_records.append(
            LogRecord(
                time_unix_nano=now,
                observed_time_unix_nano=now,
                body=any_value(record.get("body")),
                attributes=key_values(record.get("attributes", {})),
                severity_text=record.get("severity", "INFO"),
                severity_number=record.get("severity_number", 9),
                trace_id=bytes.fromhex(record["trace_id"]) if record.get("trace_id") else b"",
            )
        )
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=_resource(service, resource),
                scope_logs=[ScopeLogs(log_records=log_records)],
            )
        ]
    )
    return request.SerializeToString()


def spans_request(spans: Iterable[dict[str, Any]], service: str = "stack-test") -> bytes:
    """One export request; each span is a dict with name, trace_id, span_id, attributes."""
    now = time.time_ns()
    proto_spans = [
        Span(
            trace_id=bytes.fromhex(span.get("trace_id") or os.urandom(16).hex()),
            span_id=bytes.fromhex(span.get("span_id") or os.urandom(8).hex()),
            name=span.get("name", "work"),
            kind=Span.SPAN_KIND_INTERNAL,
            start_time_unix_nano=now - 1_000_000,
            end_time_unix_nano=now,
            attributes=key_values(span.get("attributes", {})),
        )
        for span in spans
    ]
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(resource=_resource(service), scope_spans=[ScopeSpans(spans=proto_spans)])
        ]
    )
    return request.SerializeToString()


def post(
    base_url: str,
    signal: str,
    body: bytes,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> int:
    """POST one protobuf export to ``base_url``/v1/``signal``; the HTTP status, 0 if none."""
    request = urllib.request.Request(
        f"{base_url}/v1/{signal}",
        data=body,
        method="POST",
        headers={"Content-Type": "application/x-protobuf", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return 0


# --- reading the file exporter's OTLP/JSON lines ------------------------------------------


def _json_value(value: dict[str, Any]) -> Any:
    if not value:
        return None
    kind, inner = next(iter(value.items()))
    if kind == "kvlistValue":
        return {kv["key"]: _json_value(kv.get("value", {})) for kv in inner.get("values", [])}
    if kind == "arrayValue":
        return [_json_value(item) for item in inner.get("values", [])]
    if kind == "intValue":
        return int(inner)
    return inner


def _attributes(pairs: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {kv["key"]: _json_value(kv.get("value", {})) for kv in pairs or []}


def read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:  # the last line may be half written
            continue
    return out


def file_logs(path: Path) -> list[dict[str, Any]]:
    """Every log record in the file exporter's output, flattened."""
    records = []
    for request in read_lines(path):
        for resource_logs in request.get("resourceLogs", []):
            resource = _attributes(resource_logs.get("resource", {}).get("attributes"))
            for scope_logs in resource_logs.get("scopeLogs", []):
                for record in scope_logs.get("logRecords", []):
                    records.append(
                        {
                            "body": _json_value(record.get("body", {})),
                            "attributes": _attributes(record.get("attributes")),
                            "trace_id": record.get("traceId", ""),
                            "severity": record.get("severityText", ""),
                            "resource": resource,
                        }
                    )
    return records


def file_spans(path: Path) -> list[dict[str, Any]]:
    """Every span in the file exporter's output, flattened."""
    spans = []
    for request in read_lines(path):
        for resource_spans in request.get("resourceSpans", []):
            resource = _attributes(resource_spans.get("resource", {}).get("attributes"))
            for scope_spans in resource_spans.get("scopeSpans", []):
                for span in scope_spans.get("spans", []):
                    spans.append(
                        {
                            "name": span.get("name"),
                            "trace_id": span.get("traceId", ""),
                            "span_id": span.get("spanId", ""),
                            "attributes": _attributes(span.get("attributes")),
                            "resource": resource,
                        }
                    )
    return spans


def wait_until(predicate, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
