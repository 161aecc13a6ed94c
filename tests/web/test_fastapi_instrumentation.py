"""What instrument_fastapi records per request: exclusions, errors, streaming, sizes, repeats."""

from __future__ import annotations

import asyncio
import logging
import os
import time

import fastapi
import pytest
from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import JSONResponse, StreamingResponse
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.trace import SpanKind, StatusCode

from otel_obs.web import fastapi_instrumentor_kwargs, instrument_fastapi, uninstrument_fastapi

from .inproc import Telemetry, send

DURATION = "http.server.request.duration"


class Teapot(Exception):
    pass


def app_with_routes(telemetry: Telemetry, calls: dict[str, list]) -> FastAPI:
    app = FastAPI()
    tracer = telemetry.tracer_provider.get_tracer("test")

    @app.exception_handler(Teapot)
    async def teapot_handler(request, exc):
        calls["handler"].append(trace.get_current_span().get_span_context())
        return JSONResponse({"detail": "teapot"}, status_code=503)

    @app.get("/ping")
    async def ping() -> dict:
        return {"ok": True}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("fixture failure")

    @app.get("/teapot")
    async def teapot() -> None:
        calls["route"].append(trace.get_current_span().get_span_context())
        raise Teapot()

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks():
            for _ in range(3):
                await asyncio.sleep(0.1)
                yield b"x" * 1000

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/later")
    async def later(background: BackgroundTasks) -> dict:
        async def slow_job() -> None:
            with tracer.start_as_current_span("slow_job.inner"):
                await asyncio.sleep(0.3)

        background.add_task(slow_job)
        return {"queued": True}

    @app.post("/echo")
    async def echo(body: dict) -> dict:
        return body

    for path in ("/health", "/ready", "/metrics"):
        app.add_api_route(path, ping, methods=["GET"])
    return app


@pytest.fixture
def calls() -> dict[str, list]:
    return {"handler": [], "route": []}


def duration_points(telemetry: Telemetry, route: str) -> list:
    return [p for p in telemetry.points(DURATION) if p.attributes.get("http.route") == route]


def test_health_ready_and_metrics_are_left_out_of_traces_and_metrics(telemetry, calls, instrument):
    app = instrument(app_with_routes(telemetry, calls))

    responses = send(
        app, ("GET", "/health"), ("GET", "/ready/"), ("GET", "/metrics"), ("GET", "/ping")
    )

    assert [r.status_code for r in responses] == [200, 307, 200, 200]
    assert [s.name for s in telemetry.spans()] == ["GET /ping"]
    assert {p.attributes.get("http.route") for p in telemetry.points(DURATION)} == {"/ping"}


def test_excluded_urls_variable_replaces_the_default_list(
    telemetry, calls, monkeypatch, instrument
):
    monkeypatch.setenv("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "ping")
    app = instrument(app_with_routes(telemetry, calls))

    send(app, ("GET", "/health"), ("GET", "/ping"))

    assert [s.name for s in telemetry.server_spans()] == ["GET /health"]


def test_unhandled_exception_gives_error_500_one_exception_event_and_a_500_metric(
    telemetry, calls, instrument
):
    app = instrument(app_with_routes(telemetry, calls))

    (response,) = send(app, ("GET", "/boom"))

    assert response.status_code == 500
    (span,) = telemetry.server_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["http.response.status_code"] == 500
    assert [e.name for e in span.events] == ["exception"]
    assert span.events[0].attributes["exception.type"] == "RuntimeError"
    (point,) = duration_points(telemetry, "/boom")
    assert point.count == 1
    assert point.attributes["http.response.status_code"] == 500


def test_exception_handler_response_keeps_its_status_and_the_route_trace(
    telemetry, calls, instrument
):
    app = instrument(app_with_routes(telemetry, calls))

    (response,) = send(app, ("GET", "/teapot"))

    assert response.status_code == 503
    (span,) = telemetry.server_spans()
    assert span.attributes["http.response.status_code"] == 503
    assert len(calls["handler"]) == 1
    assert calls["handler"] == calls["route"]
    assert calls["route"][0].span_id == span.context.span_id
    (point,) = duration_points(telemetry, "/teapot")
    assert point.attributes["http.response.status_code"] == 503


def test_raising_request_hook_is_logged_once_and_the_request_still_succeeds(
    telemetry, calls, caplog, instrument
):
    def broken_hook(span, scope):
        raise KeyError("fixture hook failure")

    app = instrument(app_with_routes(telemetry, calls), server_request_hook=broken_hook)

    with caplog.at_level(logging.WARNING, logger="otel_obs"):
        responses = send(app, *[("GET", "/ping")] * 3)

    assert [r.status_code for r in responses] == [200] * 3
    spans = telemetry.server_spans()
    assert len(spans) == 3 and all(not s.events for s in spans)
    hook_logs = [r for r in caplog.records if "server request hook" in r.getMessage()]
    assert len(hook_logs) == 1
    assert "KeyError" in hook_logs[0].getMessage()
    assert "fixture hook failure" not in caplog.text


def test_streaming_response_is_measured_to_the_last_byte(telemetry, calls, instrument):
    app = instrument(app_with_routes(telemetry, calls))

    (response,) = send(app, ("GET", "/stream"))

    assert len(response.content) == 3000
    (span,) = telemetry.server_spans()
    assert (span.end_time - span.start_time) / 1e9 >= 0.3
    (duration,) = duration_points(telemetry, "/stream")
    assert duration.sum >= 0.3
    sizes = [
        p
        for p in telemetry.points("http.server.response.body.size")
        if p.attributes.get("http.route") == "/stream"
    ]
    assert [(p.count, p.sum) for p in sizes] == [(1, 3000)]


def test_response_size_is_per_request_not_the_last_content_length_seen(
    telemetry, calls, instrument
):
    app = instrument(app_with_routes(telemetry, calls))

    responses = send(
        app, ("GET", "/ping"), ("GET", "/stream"), ("POST", "/echo", {}), ("GET", "/stream")
    )

    by_route = {
        p.attributes["http.route"]: (p.count, p.sum)
        for p in telemetry.points("http.server.response.body.size")
    }
    assert by_route["/ping"] == (1, len(responses[0].content))
    assert by_route["/stream"] == (2, 6000)


def test_request_size_comes_from_the_request_body(telemetry, calls, instrument):
    app = instrument(app_with_routes(telemetry, calls))

    async def post() -> int:
        import httpx

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.post("/echo", json={"campaign": "c" * 100})
            return response.status_code

    assert asyncio.run(post()) == 200
    body_length = len(b'{"campaign":"' + b"c" * 100 + b'"}')
    (point,) = telemetry.points("http.server.request.body.size")
    assert (point.count, point.sum) == (1, body_length)


def test_background_task_is_traced_in_the_request_trace_but_not_counted_as_latency(
    telemetry, calls, instrument
):
    app = instrument(app_with_routes(telemetry, calls))

    started = time.monotonic()
    (response,) = send(app, ("GET", "/later"))
    elapsed = time.monotonic() - started

    assert response.status_code == 200 and elapsed >= 0.3
    (server,) = telemetry.server_spans()
    spans = {s.name: s for s in telemetry.spans()}
    background = spans["BackgroundTask slow_job"]
    assert background.context.trace_id == server.context.trace_id
    assert background.parent.span_id == server.context.span_id
    assert spans["slow_job.inner"].parent.span_id == background.context.span_id
    assert (background.end_time - background.start_time) / 1e9 >= 0.3
    (duration,) = duration_points(telemetry, "/later")
    assert duration.sum < 0.2


def test_active_requests_rise_during_a_request_and_fall_after(telemetry, instrument):
    app = FastAPI()
    seen: list[float] = []

    @app.get("/inside")
    async def inside() -> dict:
        (point,) = telemetry.points("http.server.active_requests")
        seen.append(point.value)
        return {}

    instrument(app)
    send(app, ("GET", "/inside"))

    (after,) = telemetry.points("http.server.active_requests")
    assert seen == [1]
    assert after.value == 0
    assert after.attributes == {"http.request.method": "GET", "url.scheme": "http"}


def test_zero_code_plus_two_explicit_calls_instrument_once(telemetry, caplog):
    instrumentor = FastAPIInstrumentor()
    instrumentor.instrument(**fastapi_instrumentor_kwargs(**telemetry.providers))
    try:
        # FastAPI's own telemetry, pointed at the same providers, must stay out of the way.
        app = fastapi.FastAPI(telemetry=dict(telemetry.providers))

        @app.get("/ping")
        async def ping() -> dict:
            return {}

        with caplog.at_level(logging.WARNING):
            instrument_fastapi(app, **telemetry.providers)
            instrument_fastapi(app, **telemetry.providers)
            send(app, *[("GET", "/ping")] * 10)

        servers = telemetry.server_spans()
        assert len(servers) == 10
        server_ids = {s.context.span_id for s in servers}
        assert all(s.parent is None or s.parent.span_id not in server_ids for s in servers)
        assert len(telemetry.spans()) == 10
        (point,) = telemetry.points(DURATION)
        assert point.count == 10
        warnings = [r for r in caplog.records if "already instrumented" in r.getMessage()]
        assert len(warnings) == 1

        uninstrument_fastapi(app)
        send(app, *[("GET", "/ping")] * 5)
        assert len(telemetry.spans()) == 10
        (point,) = telemetry.points(DURATION)
        assert point.count == 10
    finally:
        instrumentor.uninstrument()


def test_send_and_receive_spans_come_back_on_request(telemetry, calls, instrument):
    app = instrument(app_with_routes(telemetry, calls), exclude_spans=[])

    send(app, ("GET", "/ping"))

    names = sorted(s.name for s in telemetry.spans())
    assert names == ["GET /ping", "GET /ping http send", "GET /ping http send"]
    internal = [s for s in telemetry.spans() if s.kind == SpanKind.INTERNAL]
    assert all(s.parent.span_id == telemetry.server_spans()[0].context.span_id for s in internal)


def test_stable_http_conventions_are_added_to_other_opt_ins(monkeypatch):
    from opentelemetry.instrumentation import _semconv

    stability = _semconv._OpenTelemetrySemanticConventionStability
    stability._initialize()
    http = _semconv._OpenTelemetryStabilitySignalType.HTTP
    # As if another instrumentation had read the variable first, without "http" in it.
    monkeypatch.setitem(
        stability._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING, http, _semconv._StabilityMode.DEFAULT
    )
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")

    fastapi_instrumentor_kwargs()

    assert sorted(os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"].split(",")) == [
        "gen_ai_latest_experimental",
        "http",
    ]
    assert stability._get_opentelemetry_stability_opt_in_mode(http) is _semconv._StabilityMode.HTTP
