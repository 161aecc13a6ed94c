"""Declared KPIs: one-line recording, bounded attribute sets, guarded failures."""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import textwrap

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_obs import _diag
from otel_obs._guard import RAISE_ENV
from otel_obs.business import OTHER, KPIRegistry


@pytest.fixture(autouse=True)
def _fresh_warnings():
    _diag.reset_for_tests()
    yield
    _diag.reset_for_tests()


@pytest.fixture
def reader():
    return InMemoryMetricReader()


@pytest.fixture
def registry(reader):
    provider = MeterProvider(metric_readers=[reader])
    yield KPIRegistry(provider)
    provider.shutdown()


@pytest.fixture
def quiet_guard(monkeypatch):
    """Production behaviour: errors inside telemetry are logged and swallowed."""
    monkeypatch.delenv(RAISE_ENV, raising=False)


def collect(reader) -> dict[str, list]:
    """Metric name -> data points of the last collection."""
    found: dict[str, list] = {}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else []:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                found[metric.name] = list(metric.data.data_points)
    return found


def by_attributes(points) -> dict[frozenset, float]:
    return {
        frozenset(p.attributes.items()): getattr(p, "value", None) if hasattr(p, "value") else p.sum
        for p in points
    }


def warnings_about(caplog, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "otel_obs" and text in r.getMessage()]


def test_counter_records_in_one_line_with_declared_attributes(registry, reader):
    orders = registry.counter(
        "shop.orders.placed",
        unit="{order}",
        description="Orders placed",
        attributes={"channel": ("web", "app")},
    )

    orders.add(1, channel="web")
    orders.add(2, channel="web")
    orders.add(1, channel="app")

    points = by_attributes(collect(reader)["shop.orders.placed"])
    assert points == {
        frozenset({("channel", "web")}): 3,
        frozenset({("channel", "app")}): 1,
    }


def test_unknown_attribute_key_is_dropped_with_one_warning(registry, reader, caplog):
    orders = registry.counter("shop.orders", attributes={"channel": ("web",)})

    with caplog.at_level(logging.WARNING, logger="otel_obs"):
        for user in ("u-1", "u-2", "u-3"):
            orders.add(1, channel="web", user_id=user, session=user)

    assert by_attributes(collect(reader)["shop.orders"]) == {frozenset({("channel", "web")}): 3}
    assert len(warnings_about(caplog, "is not a declared attribute")) == 1
    assert "u-1" not in caplog.text  # attribute values never reach the log


def test_free_attribute_values_are_cut_to_a_label_length(registry, reader):
    notes = registry.counter("notes", attributes={"title": None})

    notes.add(1, title="x" * 1000)

    (point,) = collect(reader)["notes"]
    assert point.attributes["title"] == "x" * 128


def test_value_outside_allowed_set_is_recorded_as_other(registry, reader, caplog):
    ads = registry.counter("ads.published", attributes={"platform": ("meta", "google")})

    with caplog.at_level(logging.WARNING, logger="otel_obs"):
        ads.add(1, platform="meta")
        ads.add(1, platform="myspace")
        ads.add(1, platform="friendster")
        ads.add(1, platform=OTHER)

    assert by_attributes(collect(reader)["ads.published"]) == {
        frozenset({("platform", "meta")}): 1,
        frozenset({("platform", OTHER)}): 3,
    }
    assert len(warnings_about(caplog, "outside its allowed set")) == 1
    assert "myspace" not in caplog.text


def test_free_attribute_keeps_first_values_then_folds_into_other(registry, reader, caplog):
    signups = registry.counter("signups", attributes={"country": None}, max_values=2)

    with caplog.at_level(logging.WARNING, logger="otel_obs"):
        for country in ("FR", "DE", "FR", "IT", "ES", "DE"):
            signups.add(1, country=country)

    assert by_attributes(collect(reader)["signups"]) == {
        frozenset({("country", "FR")}): 2,
        frozenset({("country", "DE")}): 2,
        frozenset({("country", OTHER)}): 2,
    }
    assert len(warnings_about(caplog, "more than 2 distinct values")) == 1


def test_attribute_values_are_labels_and_none_means_absent(registry, reader):
    flags = registry.counter("flags", attributes={"enabled": (True, False), "plan": None})

    flags.add(1, enabled=True, plan=None)
    flags.add(1, attributes={"enabled": False})

    assert by_attributes(collect(reader)["flags"]) == {
        frozenset({("enabled", "true")}): 1,
        frozenset({("enabled", "false")}): 1,
    }


def test_gauge_up_down_counter_and_histogram(registry, reader):
    users = registry.gauge("users.active", unit="{user}")
    queue = registry.up_down_counter("jobs.pending", unit="{job}")
    sizes = registry.histogram("order.size", unit="USD", buckets=(10, 100))

    users.set(40)
    users.set(42)
    queue.add(5)
    queue.add(-2)
    for value in (5, 50, 500):
        sizes.record(value)

    found = collect(reader)
    assert found["users.active"][0].value == 42
    assert found["jobs.pending"][0].value == 3
    histogram = found["order.size"][0]
    assert list(histogram.explicit_bounds) == [10, 100]
    assert list(histogram.bucket_counts) == [1, 1, 1]
    assert histogram.sum == 555


def test_counter_drops_negative_and_non_finite_amounts(registry, reader, caplog):
    revenue = registry.counter("revenue", unit="USD")

    with caplog.at_level(logging.WARNING, logger="otel_obs"):
        revenue.add(10)
        revenue.add(-3)
        revenue.add(math.nan)
        revenue.add(math.inf)

    assert collect(reader)["revenue"][0].value == 10
    assert len(warnings_about(caplog, "negative amount")) == 1
    assert len(warnings_about(caplog, "non-finite")) == 1


def test_wrong_value_type_raises_under_tests_and_is_swallowed_in_production(
    registry, reader, monkeypatch, caplog
):
    revenue = registry.counter("revenue", unit="USD")
    monkeypatch.setenv(RAISE_ENV, "true")
    with pytest.raises(TypeError):
        revenue.add("12.5")

    monkeypatch.delenv(RAISE_ENV)
    with caplog.at_level(logging.WARNING, logger="otel_obs"):
        revenue.add("12.5")
        revenue.add(True)
        revenue.add(2.5)

    assert collect(reader)["revenue"][0].value == 2.5
    assert warnings_about(caplog, "recording KPI revenue failed")


@pytest.mark.parametrize("name", ["", "9lives", "has space", "x" * 256])
def test_invalid_declaration_disables_the_kpi_instead_of_failing(
    registry, reader, quiet_guard, name, caplog
):
    with caplog.at_level(logging.WARNING, logger="otel_obs"):
        kpi = registry.counter(name)
        kpi.add(1)

    assert kpi.enabled is False
    assert collect(reader) == {}
    assert warnings_about(caplog, "not a valid instrument name")


def test_invalid_declaration_raises_under_tests(registry, monkeypatch):
    monkeypatch.setenv(RAISE_ENV, "true")
    with pytest.raises(TypeError, match="allowed values of 'platform'"):
        registry.counter("ads", attributes={"platform": "meta"})


def test_declaring_twice_returns_the_same_kpi_and_conflicts_are_refused(
    registry, reader, quiet_guard, caplog
):
    first = registry.counter("campaigns", unit="{campaign}")
    again = registry.counter("campaigns", unit="{campaign}")
    with caplog.at_level(logging.WARNING, logger="otel_obs"):
        conflicting = registry.gauge("campaigns", unit="{campaign}")
        observed = registry.observable_gauge("campaigns", lambda: [(100.0, {})], unit="{campaign}")
    first.add(1)
    again.add(1)
    conflicting.set(100)

    assert again is first
    assert conflicting.enabled is False and observed.enabled is False
    assert collect(reader)["campaigns"][0].value == 2
    assert warnings_about(caplog, "already declared as a counter")


def test_observable_gauge_callback_failure_is_swallowed(registry, reader, quiet_guard):
    def broken():
        raise RuntimeError("callback bug")

    registry.observable_gauge("broken.gauge", broken)
    registry.observable_gauge("fine.gauge", lambda: [(7, {})])

    found = collect(reader)
    assert "broken.gauge" not in found
    assert found["fine.gauge"][0].value == 7


def test_observable_gauge_caps_observations_per_collection(registry, reader, caplog):
    registry.observable_gauge(
        "top.items",
        lambda: [(float(i), {"item": f"i{i}"}) for i in range(10)],
        attributes={"item": None},
        max_values=3,
    )

    with caplog.at_level(logging.WARNING, logger="otel_obs"):
        points = collect(reader)["top.items"]

    assert len(points) == 3
    assert warnings_about(caplog, "more than 3 observations")


def test_kpi_declared_before_a_provider_exists_records_once_one_is_set():
    # A fresh interpreter: the global meter provider can be set only once per process.
    script = textwrap.dedent(
        """
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from otel_obs import business

        orders = business.counter("orders", unit="{order}", attributes={"channel": ("web",)})
        orders.add(5, channel="web")  # no provider yet: dropped, never an error

        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        orders.add(2, channel="web")
        business.adplatform.campaign_created(platform="meta")

        found = {}
        for rm in reader.get_metrics_data().resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    found[m.name] = [(dict(p.attributes), p.value) for p in m.data.data_points]
        print(found["orders"], found["adplatform.campaigns.created"])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )

    assert result.stdout.strip() == ("[({'channel': 'web'}, 2)] [({'platform': 'meta'}, 1)]")
