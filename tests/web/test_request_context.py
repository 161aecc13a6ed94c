"""Request ids, W3C trace context and baggage in, and context that follows work to threads."""

from __future__ import annotations

import asyncio
import contextvars
import re
from concurrent.futures import ThreadPoolExecutor

from fastapi import BackgroundTasks, FastAPI, Response
from fastapi.responses import JSONResponse
from opentelemetry import baggage, trace

from otel_obs import semconv
from otel_obs.web import current_request_id

from .inproc import send

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def where_am_i() -> dict:
    context = trace.get_current_span().get_span_context()
    return {
        "request_id": current_request_id(),
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "tenant": baggage.get_baggage("tenant"),
    }


class Refused(Exception):
    pass


def context_app(seen: dict[str, dict]) -> FastAPI:
    app = FastAPI()

    @app.exception_handler(Refused)
    async def refused(request, exc):
        seen["exception handler"] = where_am_i()
        return JSONResponse({}, status_code=409)

    @app.get("/where")
    async def where(background: BackgroundTasks) -> dict:
        seen["route"] = where_am_i()
        loop = asyncio.get_running_loop()
        seen["run_in_executor"] = await loop.run_in_executor(None, where_am_i)
        with ThreadPoolExecutor(max_workers=1) as pool:
            seen["thread pool"] = pool.submit(where_am_i).result()
        background.add_task(lambda: seen.setdefault("background task", where_am_i()))
        return seen["route"]

    @app.get("/sync")
    def sync_route() -> dict:
        seen["sync route"] = where_am_i()
        return seen["sync route"]

    @app.get("/refuse")
    async def refuse() -> None:
        seen["refusing route"] = where_am_i()
        raise Refused()

    @app.get("/own-id")
    async def own_id(response: Response) -> dict:
        response.headers["X-Request-ID"] = "set-by-the-app"
        return {}

    return app


def test_incoming_request_id_is_returned_recorded_and_current(telemetry, instrument):
    seen: dict[str, dict] = {}
    app = instrument(context_app(seen))

    (response,) = send(app, ("GET", "/where", {"X-Request-ID": "req-fixture-1"}))

    assert response.headers.get_list("x-request-id") == ["req-fixture-1"]
    (span,) = telemetry.server_spans()
    assert span.attributes[semconv.HTTP_REQUEST_ID] == ("req-fixture-1",)
    assert response.json()["request_id"] == "req-fixture-1"


def test_request_without_id_gets_a_fresh_one_per_request(telemetry, instrument):
    app = instrument(context_app({}))

    responses = send(app, ("GET", "/sync"), ("GET", "/sync"))

    ids = [r.headers["x-request-id"] for r in responses]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert ids[0] != ids[1]
    spans = telemetry.server_spans()
    assert [s.attributes[semconv.HTTP_REQUEST_ID] for s in spans] == [(i,) for i in ids]
    assert [r.json()["request_id"] for r in responses] == ids


def test_malformed_request_ids_are_replaced(instrument):
    app = instrument(context_app({}))
    bad = ["has space", "x" * 129, "semi;colon", 'quote"d', ""]

    responses = send(app, *[("GET", "/sync", {"X-Request-ID": value}) for value in bad])

    returned = [r.headers["x-request-id"] for r in responses]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in returned)
    assert len(set(returned)) == len(bad)


def test_request_id_set_by_the_app_is_not_duplicated(instrument):
    app = instrument(context_app({}))

    (response,) = send(app, ("GET", "/own-id"))

    assert response.headers.get_list("x-request-id") == ["set-by-the-app"]


def test_trace_context_and_request_id_follow_work_everywhere_the_request_goes(
    telemetry, instrument
):
    seen: dict[str, dict] = {}
    app = instrument(context_app(seen))
    headers = {
        "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01",
        "baggage": "tenant=acme",
        "X-Request-ID": "req-fixture-2",
    }

    send(app, ("GET", "/where", headers), ("GET", "/sync", headers), ("GET", "/refuse", headers))

    assert set(seen) == {
        "route",
        "run_in_executor",
        "thread pool",
        "background task",
        "sync route",
        "refusing route",
        "exception handler",
    }
    servers = {s.name: s for s in telemetry.server_spans()}
    assert servers["GET /where"].parent.span_id == int(PARENT_ID, 16)
    assert servers["GET /where"].parent.is_remote
    server_ids = {format(s.context.span_id, "016x") for s in servers.values()}
    for place, found in seen.items():
        assert found["trace_id"] == TRACE_ID, place
        assert found["request_id"] == "req-fixture-2", place
        assert found["tenant"] == "acme", place
    for place in ("route", "run_in_executor", "thread pool", "sync route", "refusing route"):
        assert seen[place]["span_id"] in server_ids, place
    assert seen["exception handler"]["span_id"] == seen["refusing route"]["span_id"]


def test_outside_a_request_there_is_no_request_id(instrument):
    app = instrument(context_app({}))
    send(app, ("GET", "/sync"))

    assert contextvars.Context().run(current_request_id) is None
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(current_request_id).result() is None
