"""uvicorn with two worker processes, each exporting over real OTLP/HTTP."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from otel_obs.receiver import OTLPReceiver

from .realproc import OTEL_OBS_RUN, Process, start_uvicorn, telemetry_env

pytestmark = pytest.mark.real

ROUTE = "/campaigns/{campaign_id}"


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[OTLPReceiver, str, Process]]:
    tmp: Path = tmp_path_factory.mktemp("uvicorn")
    with OTLPReceiver() as receiver:
        # The app's Celery producer never connects in these tests.
        env = telemetry_env(receiver.endpoint, "shop-api", SHOP_BROKER_URL="redis://127.0.0.1:9/0")
        api, base = start_uvicorn("shop_api:app", env, tmp, workers=2)
        try:
            yield receiver, base, api
        finally:
            api.stop()


def get(url: str, request_id: str) -> tuple[str, dict]:
    request = urllib.request.Request(url, headers={"X-Request-ID": request_id})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["x-request-id"], json.loads(response.read())


def wait_for_both_workers(receiver: OTLPReceiver, base: str) -> int:
    """Send requests until both workers have answered, forget their spans, return how many."""
    pids: set[int] = set()
    sent = 0
    deadline = time.monotonic() + 30
    with ThreadPoolExecutor(max_workers=8) as pool:
        while len(pids) < 2 and time.monotonic() < deadline:
            answers = pool.map(
                get, [f"{base}/campaigns/0"] * 16, [f"warm-up-{sent + n}" for n in range(16)]
            )
            pids.update(body["pid"] for _, body in answers)
            sent += 16
    assert len(pids) == 2, "the second uvicorn worker never answered"
    assert receiver.wait_for(lambda r: len(_server_spans(r)) >= sent, timeout=15)
    receiver.clear()
    return sent


def test_both_workers_serve_and_export_route_named_spans_and_metrics(served):
    receiver, base, _ = served
    warm_up = wait_for_both_workers(receiver, base)
    pid_of: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for round_number in range(5):
            ids = [f"req-{round_number}-{n}" for n in range(40)]
            urls = [f"{base}/campaigns/{1000 * round_number + n}" for n in range(40)]
            for request_id, body in pool.map(get, urls, ids):
                pid_of[request_id] = body["pid"]
            if len(set(pid_of.values())) == 2:
                break

    assert len(set(pid_of.values())) == 2, "one uvicorn worker served every request"
    assert receiver.wait_for(lambda r: len(_server_spans(r)) >= len(pid_of), timeout=15)
    spans = _server_spans(receiver)
    assert len(spans) == len(pid_of)
    assert {s.name for s in spans} == {f"GET {ROUTE}"}
    assert {s.attributes["http.route"] for s in spans} == {ROUTE}
    assert len({s.attributes["url.path"] for s in spans}) == len(spans)
    instance_of_pid: dict[int, set[str]] = {}
    for span in spans:
        (request_id,) = span.attributes["http.request.header.x-request-id"]
        instance_of_pid.setdefault(pid_of[request_id], set()).add(
            span.resource["service.instance.id"]
        )
    assert all(len(instances) == 1 for instances in instance_of_pid.values())
    assert len(set().union(*instance_of_pid.values())) == 2

    def counted(r: OTLPReceiver) -> int:
        latest: dict[tuple, int] = {}
        for point in r.points("http.server.request.duration"):
            key = (point.resource["service.instance.id"], tuple(sorted(point.attributes.items())))
            latest[key] = max(latest.get(key, 0), point.count or 0)
        return sum(latest.values())

    # Cumulative counts: the warm-up requests are in them too.
    assert receiver.wait_for(lambda r: counted(r) == warm_up + len(pid_of), timeout=15)
    routes = {
        p.attributes.get("http.route") for p in receiver.points("http.server.request.duration")
    }
    assert routes == {ROUTE}


def _server_spans(receiver: OTLPReceiver) -> list:
    return _server_spans_of(receiver, "shop-api")


def test_probe_paths_reach_the_app_but_not_the_telemetry(served):
    receiver, base, _ = served
    with urllib.request.urlopen(f"{base}/ready", timeout=10) as response:
        ready = json.loads(response.read())

    assert ready == {"status": "ready", "checks": {"telemetry": "ok"}}
    assert not any(s.attributes.get("url.path") in ("/health", "/ready") for s in receiver.spans())


def test_zero_code_start_gives_the_same_behaviour(tmp_path):
    with OTLPReceiver() as receiver:
        env = telemetry_env(receiver.endpoint, "plain-api")
        api, base = start_uvicorn("plain_api:app", env, tmp_path, workers=2, launcher=OTEL_OBS_RUN)
        try:
            answers = [get(f"{base}/campaigns/{n}", f"req-plain-{n}") for n in range(10)]

            assert [returned for returned, _ in answers] == [f"req-plain-{n}" for n in range(10)]
            assert receiver.wait_for(
                lambda r: len(_server_spans_of(r, "plain-api")) >= 10, timeout=15
            )
            spans = _server_spans_of(receiver, "plain-api")
            assert len(spans) == 10
            assert {s.name for s in spans} == {f"GET {ROUTE}"}
            assert sorted(
                s.attributes["http.request.header.x-request-id"][0] for s in spans
            ) == sorted(f"req-plain-{n}" for n in range(10))
            assert not [s for s in receiver.spans() if s.attributes.get("url.path") == "/health"]
        finally:
            api.stop()


def _server_spans_of(receiver: OTLPReceiver, service: str) -> list:
    return [
        s for s in receiver.spans() if s.kind == 2 and s.resource.get("service.name") == service
    ]
