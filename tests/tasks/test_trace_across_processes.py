"""A FastAPI request, the tasks it enqueues and their subtasks, across real processes.

uvicorn (2 workers) and a prefork Celery worker (concurrency 2) on a real Redis export over
OTLP/HTTP to a real receiver; everything asserted here is what the receiver decoded.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from web.realproc import redis_server, start_celery_worker, start_uvicorn, telemetry_env

from otel_obs.receiver import OTLPReceiver

pytestmark = pytest.mark.real

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"
PRODUCER, CONSUMER, SERVER, INTERNAL = 4, 5, 2, 1


@dataclass
class Shop:
    receiver: OTLPReceiver
    base: str
    broker: str

    def post(self, path: str, headers: dict[str, str] | None = None) -> tuple[dict, Any]:
        request = urllib.request.Request(self.base + path, method="POST", headers=headers or {})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read()), response.headers


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Iterator[Shop]:
    tmp: Path = tmp_path_factory.mktemp("shop")
    with OTLPReceiver() as receiver, redis_server(tmp) as broker:
        env = telemetry_env(receiver.endpoint, "shop-worker", SHOP_BROKER_URL=broker)
        worker = start_celery_worker("shop_worker", env, tmp, "-Q", "celery")
        try:
            api, base = start_uvicorn(
                "shop_api:app", {**env, "OTEL_SERVICE_NAME": "shop-api"}, tmp, 2
            )
            try:
                yield Shop(receiver, base, broker)
            finally:
                api.stop()
        finally:
            worker.stop()


def spans_of(receiver: OTLPReceiver, trace_id: str) -> dict[str, Any]:
    return {s.name: s for s in receiver.spans() if s.trace_id == trace_id}


def test_one_trace_covers_the_request_the_publishes_and_every_task_run(shop):
    headers = {
        "traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01",
        "baggage": "tenant=acme",
        "X-Request-ID": "req-checkout-1",
    }

    body, response_headers = shop.post("/checkout", headers)

    assert response_headers["x-request-id"] == "req-checkout-1"
    assert body["request_id"] == "req-checkout-1"
    expected = {
        "POST /checkout",
        "checkout",
        "apply_async/shop.charge",
        "apply_async/billing.charge",
        "run/shop.charge",
        "run/billing.charge",
        "charge.work",
        "billing.work",
        "apply_async/shop.notify",
        "run/shop.notify",
        "notify.work",
    }
    assert shop.receiver.wait_for(lambda r: expected <= set(spans_of(r, TRACE_ID)), timeout=15)
    trace_spans = [s for s in shop.receiver.spans() if s.trace_id == TRACE_ID]
    assert sorted(s.name for s in trace_spans) == sorted(expected)
    span = spans_of(shop.receiver, TRACE_ID)

    def parent_of(name: str) -> str:
        return span[name].parent_span_id

    assert parent_of("POST /checkout") == CLIENT_SPAN
    assert span["POST /checkout"].kind == SERVER
    assert span["POST /checkout"].attributes["http.request.header.x-request-id"] == [
        "req-checkout-1"
    ]
    assert parent_of("checkout") == span["POST /checkout"].span_id
    for task in ("shop.charge", "billing.charge"):
        publish, run = span[f"apply_async/{task}"], span[f"run/{task}"]
        assert (publish.kind, run.kind) == (PRODUCER, CONSUMER)
        assert publish.parent_span_id == span["checkout"].span_id
        assert run.parent_span_id == publish.span_id
    assert parent_of("charge.work") == span["run/shop.charge"].span_id
    assert parent_of("billing.work") == span["run/billing.charge"].span_id
    assert parent_of("apply_async/shop.notify") == span["charge.work"].span_id
    assert parent_of("run/shop.notify") == span["apply_async/shop.notify"].span_id
    assert parent_of("notify.work") == span["run/shop.notify"].span_id
    assert span["charge.work"].attributes["shop.tenant"] == "acme"
    assert span["apply_async/billing.charge"].resource["service.name"] == "shop-api"
    assert span["run/billing.charge"].resource["service.name"] == "shop-worker"


def latest_sums(receiver: OTLPReceiver, metric: str, *keys: str) -> dict[tuple, float]:
    """Sum over worker processes of each series' latest cumulative value (count for histograms)."""
    latest: dict[tuple, tuple[int, float]] = {}
    for point in receiver.points(metric):
        series = (
            point.resource.get("service.instance.id"),
            *(point.attributes.get(k) for k in keys),
        )
        value = point.count if point.kind == "histogram" else point.value
        if point.time_ns >= latest.get(series, (0, 0.0))[0]:
            latest[series] = (point.time_ns, value)
    sums: dict[tuple, float] = {}
    for (_, *labels), (_, value) in latest.items():
        sums[tuple(labels)] = sums.get(tuple(labels), 0) + value
    return sums


def test_task_outcomes_durations_retries_and_queue_wait(shop):
    shop.post("/enqueue/shop.work_unit?count=3")
    shop.post("/enqueue/shop.fail")
    shop.post("/flaky/1")
    shop.post("/enqueue/shop.later?countdown=1.5")
    (revoked_id,) = shop.post("/enqueue/shop.work_unit?countdown=2")[0]["ids"]
    Celery(broker=shop.broker).control.revoke(revoked_id)

    outcomes = {
        ("shop.work_unit", "success"): 3,
        ("shop.fail", "failure"): 1,
        ("shop.flaky", "retry"): 1,
        ("shop.flaky", "success"): 1,
        ("shop.later", "success"): 1,
        ("shop.work_unit", "revoked"): 1,
    }

    def counted(r: OTLPReceiver) -> dict[tuple, float]:
        sums = latest_sums(r, "celery.task.outcomes", "celery.task.name", "celery.task.outcome")
        return {key: value for key, value in sums.items() if key[0] in {k[0] for k in outcomes}}

    assert shop.receiver.wait_for(lambda r: counted(r) == outcomes, timeout=20), counted(
        shop.receiver
    )
    ran = {key: value for key, value in outcomes.items() if key[1] != "revoked"}
    assert shop.receiver.wait_for(
        lambda r: (
            {
                k: v
                for k, v in latest_sums(
                    r, "celery.task.duration", "celery.task.name", "celery.task.outcome"
                ).items()
                if k in ran
            }
            == ran
        ),
        timeout=10,
    )
    retries = latest_sums(shop.receiver, "celery.task.retries", "celery.task.name", "error.type")
    assert retries == {("shop.flaky", "TimeoutError"): 1}

    waits = latest_sums(shop.receiver, "celery.task.queue_wait", "celery.task.name")
    assert waits[("shop.work_unit",)] == 3 and waits[("shop.flaky",)] == 2
    later_wait = [
        p
        for p in shop.receiver.points("celery.task.queue_wait")
        if p.attributes["celery.task.name"] == "shop.later" and p.count
    ]
    spans = {s.name: s for s in shop.receiver.spans() if s.name.endswith("/shop.later")}
    publish_to_start = (
        spans["run/shop.later"].start_ns - spans["apply_async/shop.later"].start_ns
    ) / 1e9
    assert publish_to_start >= 1.5
    assert later_wait[-1].sum < 1.0
    assert later_wait[-1].attributes["messaging.destination.name"] == "celery"


def test_queue_depth_of_declared_redis_queues(shop):
    shop.post("/enqueue/shop.work_unit?count=4&queue=backlog")

    def depth(r: OTLPReceiver) -> dict[str, float]:
        points = r.points("celery.queue.depth")
        latest = {}
        for point in sorted(points, key=lambda p: p.time_ns):
            latest[point.attributes["messaging.destination.name"]] = point.value
        return latest

    assert shop.receiver.wait_for(lambda r: depth(r).get("backlog") == 4, timeout=15), depth(
        shop.receiver
    )
    assert set(depth(shop.receiver)) == {"celery", "backlog"}
    assert shop.receiver.wait_for(lambda r: depth(r).get("celery") == 0, timeout=10)
