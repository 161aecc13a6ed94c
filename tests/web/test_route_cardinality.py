"""Span names and metric labels come from route templates, never from raw paths."""

from __future__ import annotations

import gc
import random
import string
from collections.abc import Iterator

import fastapi
import pytest
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from otel_obs.web import fastapi_instrumentor_kwargs, instrument_fastapi

from .inproc import Telemetry, flood, send

USER_ROUTE = "/users/{user_id}"
ITEM_ROUTE = "/orders/{order_id}/items/{item_id}"
KNOWN_METHODS = {
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "QUERY",
}


def shop_app() -> fastapi.FastAPI:
    # fastapi.FastAPI is looked up at call time: the zero-code start replaces the class.
    app = fastapi.FastAPI()

    @app.get(USER_ROUTE)
    async def user(user_id: int) -> dict:
        return {"user_id": user_id}

    @app.get(ITEM_ROUTE)
    async def item(order_id: int, item_id: int) -> dict:
        return {"order_id": order_id, "item_id": item_id}

    return app


def unknown_paths(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    fixed = ["/wp-admin/x9f2k1", "/.env", "/users/abc/extra", "/orders/77/items", "/users/"]
    alphabet = string.ascii_lowercase + string.digits
    random_paths = [
        "/"
        + "/".join(
            "".join(rng.choices(alphabet, k=rng.randint(3, 12))) for _ in range(rng.randint(1, 4))
        )
        for _ in range(count - len(fixed))
    ]
    return fixed + random_paths


@pytest.fixture
def zero_code(telemetry: Telemetry) -> Iterator[None]:
    """FastAPI instrumented the way the zero-code start does it."""
    instrumentor = FastAPIInstrumentor()
    instrumentor.instrument(**fastapi_instrumentor_kwargs(**telemetry.providers))
    yield
    instrumentor.uninstrument()


def test_server_span_names_are_route_templates_or_the_method_alone(telemetry, zero_code):
    app = shop_app()
    unknown = unknown_paths(300)
    paths = [f"/users/{n}" for n in range(1, 501)] + ["/orders/77/items/3", "/users/abc"] + unknown

    responses = send(app, *[("GET", path) for path in paths])

    assert [r.status_code for r in responses[:501]] == [200] * 501
    assert responses[501].status_code == 422  # path parameter fails validation
    assert {r.status_code for r in responses[502:]} == {404}
    spans = telemetry.server_spans()
    assert len(spans) == len(paths)
    assert {s.name for s in spans} == {f"GET {USER_ROUTE}", f"GET {ITEM_ROUTE}", "GET"}
    by_path = {s.attributes["url.path"]: s for s in spans}
    assert set(by_path) == set(paths)
    assert by_path["/users/abc"].name == f"GET {USER_ROUTE}"
    for path in unknown:
        assert by_path[path].name == "GET"
        assert "http.route" not in by_path[path].attributes
    assert by_path["/users/314"].attributes["http.route"] == USER_ROUTE
    assert by_path["/orders/77/items/3"].attributes["http.route"] == ITEM_ROUTE


def test_metric_series_stay_at_routes_plus_one_under_distinct_ids_and_unknown_paths(
    telemetry, instrument
):
    app = instrument(shop_app())
    with_ids = [f"/users/{n}" for n in range(500)] + [
        f"/orders/{n}/items/{n + 1}" for n in range(500)
    ]

    statuses = flood(app, [("GET", p) for p in with_ids + unknown_paths(1000)])

    assert statuses == {200: 1000, 404: 1000}
    durations = telemetry.points("http.server.request.duration")
    series = {frozenset(p.attributes.items()) for p in durations}
    assert len(series) == 2 + 1
    assert sum(p.count for p in durations) == 2000
    assert {p.attributes.get("http.route") for p in durations} == {USER_ROUTE, ITEM_ROUTE, None}
    sizes = telemetry.points("http.server.response.body.size")
    assert {frozenset(p.attributes.items()) for p in sizes} == series
    assert len(telemetry.points("http.server.active_requests")) == 1


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def test_scanner_flood_keeps_labels_bounded_and_memory_flat():
    # Spans are created and dropped, as with a real exporter, so only metric state could grow.
    reader = InMemoryMetricReader()
    app = instrument_fastapi(
        shop_app(),
        tracer_provider=TracerProvider(),
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    unknown = unknown_paths(10_000, seed=11)
    odd_methods = [("PURGE", "/users/1"), ("PROPFIND", "/x"), ("get", "/users/2"), ("FOO", "/.env")]

    first = flood(
        app, [("GET", f"/users/{n}") for n in range(1000)] + [("GET", p) for p in unknown[:1000]]
    )
    gc.collect()
    rss_at_1000 = _rss_bytes()
    rest = flood(app, [("GET", p) for p in unknown[1000:]] + odd_methods)
    gc.collect()
    rss_at_10000 = _rss_bytes()

    points = [
        point
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "http.server.request.duration"
        for point in m.data.data_points
    ]
    assert first == {200: 1000, 404: 1000}
    assert rest == {404: 9002, 405: 1, 200: 1}
    assert sum(p.count for p in points) == 11_004
    assert {p.attributes.get("http.route") for p in points} <= {USER_ROUTE, ITEM_ROUTE, None}
    methods = {p.attributes["http.request.method"] for p in points}
    assert methods == {"GET", "_OTHER"} and methods <= KNOWN_METHODS | {"_OTHER"}
    assert abs(rss_at_10000 - rss_at_1000) <= 0.05 * rss_at_1000
