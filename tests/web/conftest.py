"""Fixtures: SDK providers with in-memory exporters for in-process FastAPI tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from otel_obs import _diag
from otel_obs.web import instrument_fastapi, uninstrument_fastapi

from .inproc import Telemetry, make_telemetry


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    _diag.reset_for_tests()
    telemetry = make_telemetry()
    yield telemetry
    telemetry.tracer_provider.shutdown()
    telemetry.meter_provider.shutdown()


@pytest.fixture
def instrument(telemetry: Telemetry) -> Iterator[Callable[..., Any]]:
    """instrument_fastapi with the test's providers; undone after the test.

    Undoing matters beyond the app: the instrumentation traces background tasks through
    a class-level patch bound to the first instrumented app's tracer.
    """
    apps: list[Any] = []

    def instrument_app(app: Any, **kwargs: Any) -> Any:
        apps.append(app)
        return instrument_fastapi(app, **telemetry.providers, **kwargs)

    yield instrument_app
    for app in apps:
        uninstrument_fastapi(app)
