"""The opt-in /health and /ready routes."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI

from otel_obs.receiver import OTLPReceiver
from otel_obs.web import health_router, telemetry_export_health

from .inproc import send
from .realproc import free_port


@pytest.fixture
def collector(monkeypatch) -> OTLPReceiver:
    with OTLPReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        yield receiver


@pytest.fixture
def no_collector(monkeypatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")


def app_with(**kwargs) -> FastAPI:
    app = FastAPI()
    app.include_router(health_router(**kwargs))
    return app


def test_liveness_answers_ok(no_collector):
    (response,) = send(app_with(), ("GET", "/health"))

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_ready_reports_healthy_export_when_the_collector_accepts_connections(collector):
    (response,) = send(app_with(), ("GET", "/ready"))

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"telemetry": "ok"}}


def test_failing_export_is_reported_but_does_not_make_the_service_unready(no_collector):
    (response,) = send(app_with(), ("GET", "/ready"))

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"telemetry": "failing"}}


def test_failing_export_makes_the_service_unready_when_required(no_collector):
    (response,) = send(app_with(require_telemetry=True), ("GET", "/ready"))

    assert response.status_code == 503
    assert response.json()["status"] == "not ready"


def test_export_health_is_disabled_when_traces_are_not_exported(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")

    assert telemetry_export_health() == "disabled"


def test_readiness_checks_that_fail_raise_or_hang_make_the_service_unready(collector):
    async def slow() -> bool:
        await asyncio.sleep(5)
        return True

    def broken() -> bool:
        raise ConnectionError("database down")

    checks = {"database": lambda: True, "cache": lambda: False, "broken": broken, "slow": slow}
    (response,) = send(app_with(checks=checks, timeout=0.2), ("GET", "/ready"))

    assert response.status_code == 503
    assert response.json() == {
        "status": "not ready",
        "checks": {
            "database": "ok",
            "cache": "failing",
            "broken": "failing",
            "slow": "failing",
            "telemetry": "ok",
        },
    }


def test_health_routes_are_not_traced_nor_measured(telemetry, instrument, collector):
    app = instrument(app_with())

    responses = send(app, ("GET", "/health"), ("GET", "/ready"))

    assert [r.status_code for r in responses] == [200, 200]
    assert telemetry.spans() == []
    assert telemetry.points("http.server.request.duration") == []
