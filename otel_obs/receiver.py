"""A small OTLP/HTTP receiver that keeps what it is sent, decoded.

The demo uses it to show a whole trace when no Collector runs, and the tests use it as the
real endpoint that the SDK's exporters talk to over HTTP. It binds 127.0.0.1 on a free
port unless told otherwise, and holds at most ``max_items`` spans, points and records per
signal, dropping the oldest beyond that.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

_PATHS = {
    "/v1/traces": ("traces", ExportTraceServiceRequest),
    "/v1/metrics": ("metrics", ExportMetricsServiceRequest),
    "/v1/logs": ("logs", ExportLogsServiceRequest),
}


def any_value(value: AnyValue) -> Any:
    """Return the Python value held by an OTLP ``AnyValue``."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind)


def attributes(pairs: "list[KeyValue] | Any") -> dict[str, Any]:
    return {pair.key: any_value(pair.value) for pair in pairs}


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    status_code: int
    status_message: str
    events: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, str]] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


@dataclass
class Point:
    """One metric data point, flattened with its metric and resource."""

    metric: str
    unit: str
    kind: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    value: float | None = None
    count: int | None = None
    sum: float | None = None
    bucket_counts: list[int] = field(default_factory=list)
    bounds: list[float] = field(default_factory=list)
    start_ns: int = 0
    time_ns: int = 0
    is_monotonic: bool | None = None
    temporality: int | None = None


@dataclass
class LogRecord:
    body: Any
    severity_text: str
    severity_number: int
    trace_id: str
    span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    time_ns: int


def _spans(request: ExportTraceServiceRequest) -> list[Span]:
    out = []
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                out.append(
                    Span(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        kind=span.kind,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes=attributes(span.attributes),
                        resource=resource,
                        scope=scope_spans.scope.name,
                        status_code=span.status.code,
                        status_message=span.status.message,
                        events=[
                            {"name": event.name, "attributes": attributes(event.attributes)}
                            for event in span.events
                        ],
                        links=[
                            {"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex()}
                            for link in span.links
                        ],
                    )
                )
    return out


def _number(point: Any) -> float:
    return point.as_double if point.WhichOneof("value") == "as_double" else float(point.as_int)


def _points(request: ExportMetricsServiceRequest) -> list[Point]:
    out = []
    for resource_metrics in request.resource_metrics:
        resource = attributes(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope.name
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                data = getattr(metric, kind)
                common = dict(
                    metric=metric.name, unit=metric.unit, kind=kind, resource=resource, scope=scope
                )
                for point in data.data_points:
                    extra: dict[str, Any] = {
                        "attributes": attributes(point.attributes),
                        "start_ns": point.start_time_unix_nano,
                        "time_ns": point.time_unix_nano,
                    }
                    if kind in ("sum", "gauge"):
                        extra["value"] = _number(point)
                    else:
                        extra.update(count=point.count, sum=point.sum)
                        if kind == "histogram":
                            extra.update(
                                bucket_counts=list(point.bucket_counts),
                                bounds=list(point.explicit_bounds),
                            )
                    if kind == "sum":
                        extra["is_monotonic"] = data.is_monotonic
                    if kind != "gauge":
                        extra["temporality"] = data.aggregation_temporality
                    out.append(Point(**common, **extra))
    return out


def _logs(request: ExportLogsServiceRequest) -> list[LogRecord]:
    out = []
    for resource_logs in request.resource_logs:
        resource = attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                out.append(
                    LogRecord(
                        body=any_value(record.body),
                        severity_text=record.severity_text,
                        severity_number=record.severity_number,
                        trace_id=record.trace_id.hex(),
                        span_id=record.span_id.hex(),
                        attributes=attributes(record.attributes),
                        resource=resource,
                        scope=scope_logs.scope.name,
                        time_ns=record.time_unix_nano,
                    )
                )
    return out


_DECODERS: dict[str, Callable[[Any], list[Any]]] = {
    "traces": _spans,
    "metrics": _points,
    "logs": _logs,
}


class OTLPReceiver:
    """Receive OTLP/HTTP protobuf exports and keep them for inspection.

    Use as a context manager, or call ``start()`` and ``stop()``. ``endpoint`` is the base
    URL to put in ``OTEL_EXPORTER_OTLP_ENDPOINT``. ``status`` can be set to make every
    export answer with that HTTP status instead of 200, to test export failures.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        max_items: int = 200_000,
        forward_to: str | None = None,
    ):
        self._lock = threading.Lock()
        self.forward_to = forward_to.rstrip("/") if forward_to else None
        self.forward_failures = 0
        self._items: dict[str, deque[Any]] = {
            signal: deque(maxlen=max_items) for signal in _DECODERS
        }
        self.requests: dict[str, int] = {signal: 0 for signal in _DECODERS}
        self.rejected = 0  # bodies that did not decode as OTLP protobuf
        self.status = 200
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def endpoint(self) -> str:
        return f"http://{self._server.server_address[0]}:{self.port}"

    def start(self) -> "OTLPReceiver":
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="otlp-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "OTLPReceiver":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def spans(self) -> list[Span]:
        return self._snapshot("traces")

    def points(self, metric: str | None = None) -> list[Point]:
        points = self._snapshot("metrics")
        return [p for p in points if metric is None or p.metric == metric]

    def logs(self) -> list[LogRecord]:
        return self._snapshot("logs")

    def clear(self) -> None:
        with self._lock:
            for items in self._items.values():
                items.clear()

    def wait_for(
        self, predicate: Callable[["OTLPReceiver"], bool], timeout: float = 10.0
    ) -> bool:
        """Poll until ``predicate(self)`` is true; return whether it became true in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.05)
        return predicate(self)

    def _snapshot(self, signal: str) -> list[Any]:
        with self._lock:
            return list(self._items[signal])

    def _forward(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        import urllib.request

        request = urllib.request.Request(
            self.forward_to + path, data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                response.read()
        except OSError:
            with self._lock:
                self.forward_failures += 1

    def _store(self, signal: str, message_type: type, body: bytes) -> None:
        request = message_type()
        request.ParseFromString(body)
        decoded = _DECODERS[signal](request)
        with self._lock:
            self.requests[signal] += 1
            self._items[signal].extend(decoded)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (name fixed by the base class)
                route = _PATHS.get(self.path.split("?")[0])
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if route is None:
                    self._answer(404)
                    return
                if receiver.status != 200:
                    self._answer(receiver.status)
                    return
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if receiver.forward_to:
                    forwarded = {"Content-Type": self.headers.get("Content-Type", "")}
                    if encoding:
                        forwarded["Content-Encoding"] = encoding
                    receiver._forward(self.path, body, forwarded)
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                try:
                    receiver._store(route[0], route[1], body)
                except Exception:  # a body that is not OTLP protobuf
                    with receiver._lock:
                        receiver.rejected += 1
                    self._answer(400)
                    return
                self._answer(200)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return Handler


class BlackholeServer:
    """A TCP listener on 127.0.0.1 that accepts connections and never answers."""

    def __init__(self) -> None:
        import socket

        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(128)
        self._accepted: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="blackhole", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def _accept(self) -> None:
        self._socket.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except OSError:
                continue
            self._accepted.append(conn)

    def __enter__(self) -> "BlackholeServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for conn in self._accepted:
            conn.close()
        self._socket.close()


def serve(argv: list[str] | None = None) -> int:
    """Run a receiver in the foreground, printing a line per export (``python -m``)."""
    import argparse

    parser = argparse.ArgumentParser(description=serve.__doc__)
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args(argv)
    with OTLPReceiver(port=args.port) as receiver:
        print(f"listening on {receiver.endpoint}", flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(serve())
