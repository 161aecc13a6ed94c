"""The ad-platform KPI pack, in memory and over real OTLP/HTTP."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, PeriodicExportingMetricReader

from otel_obs import semconv
from otel_obs.business import OTHER, AdPlatformKPIs, KPIRegistry, PredictionWindow, TopCampaigns
from otel_obs.receiver import OTLPReceiver


@pytest.fixture
def reader():
    return InMemoryMetricReader()


@pytest.fixture
def pack(reader):
    provider = MeterProvider(metric_readers=[reader])
    yield AdPlatformKPIs(KPIRegistry(provider), top_campaigns=3, tracked_campaigns=5)
    provider.shutdown()


def collect(reader) -> dict[str, list]:
    found: dict[str, list] = {}
    for resource_metrics in reader.get_metrics_data().resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                found[metric.name] = list(metric.data.data_points)
    return found


def values(points) -> dict[frozenset, float]:
    return {frozenset(p.attributes.items()): p.value for p in points}


def test_counts_campaigns_ads_and_videos_by_their_bounded_labels(pack, reader):
    pack.campaign_created(platform="meta", tier="pro")
    pack.campaign_created(platform="meta", tier="pro")
    pack.campaign_created(platform="orkut", tier="pro")
    pack.ad_published(platform="tiktok", count=4)
    pack.video_generated(status="succeeded", duration_s=12.0)
    pack.video_generated(status="failed", duration_s=3.0)
    pack.video_generated(status="exploded")

    found = collect(reader)
    assert values(found[semconv.METRIC_ADPLATFORM_CAMPAIGNS_CREATED]) == {
        frozenset({("platform", "meta"), ("tier", "pro")}): 2,
        frozenset({("platform", OTHER), ("tier", "pro")}): 1,
    }
    assert values(found[semconv.METRIC_ADPLATFORM_ADS_PUBLISHED]) == {
        frozenset({("platform", "tiktok")}): 4
    }
    assert values(found[semconv.METRIC_ADPLATFORM_VIDEO_GENERATIONS]) == {
        frozenset({("status", "succeeded")}): 1,
        frozenset({("status", "failed")}): 1,
        frozenset({("status", OTHER)}): 1,
    }
    durations = found[semconv.METRIC_ADPLATFORM_VIDEO_GENERATION_DURATION]
    assert sorted(p.sum for p in durations) == [3.0, 12.0]


def test_campaign_result_records_spend_revenue_and_roas(pack, reader):
    pack.campaign_result("cmp-1", spend_usd=200.0, revenue_usd=500.0, platform="google")
    pack.campaign_result("cmp-2", spend_usd=100.0, revenue_usd=50.0, platform="google")
    pack.campaign_result("cmp-3", spend_usd=0.0, revenue_usd=10.0, platform="google")

    found = collect(reader)
    google = frozenset({("platform", "google")})
    assert values(found[semconv.METRIC_ADPLATFORM_AD_SPEND]) == {google: 300.0}
    assert values(found[semconv.METRIC_ADPLATFORM_REVENUE]) == {google: 560.0}
    roas = found[semconv.METRIC_ADPLATFORM_ROAS][0]
    # 500/200 = 2.5 and 50/100 = 0.5; a zero-spend report has no ROAS.
    assert roas.count == 2
    assert roas.sum == pytest.approx(3.0)
    assert list(roas.explicit_bounds) == list(semconv.ADPLATFORM_ROAS_BUCKETS)


def test_prediction_error_histogram_and_window_mae_r2(pack, reader):
    pairs = [(1.0, 1.5), (2.0, 2.2), (3.0, 2.4), (4.0, 4.0)]
    for predicted, actual in pairs:
        pack.prediction(predicted=predicted, actual=actual, model="roas")

    found = collect(reader)
    errors = found[semconv.METRIC_ADPLATFORM_PREDICTION_ERROR][0]
    assert errors.count == 4
    assert errors.sum == pytest.approx(0.5 + 0.2 + 0.6 + 0.0)
    # Worked out by hand: mean actual = 2.525, SST = 3.3475, SSE = 0.65.
    assert values(found[semconv.METRIC_ADPLATFORM_PREDICTION_MAE]) == {
        frozenset({("model", "roas")}): pytest.approx(1.3 / 4)
    }
    assert values(found[semconv.METRIC_ADPLATFORM_PREDICTION_R2]) == {
        frozenset({("model", "roas")}): pytest.approx(1 - 0.65 / 3.3475)
    }


def test_prediction_window_keeps_only_the_last_pairs():
    window = PredictionWindow(size=2)
    for predicted, actual in [(0.0, 100.0), (1.0, 2.0), (3.0, 3.0)]:
        window.add(predicted, actual)

    assert window.mae() == pytest.approx(0.5)
    assert window.r2() == pytest.approx(1 - 1.0 / 0.5)


def test_r2_is_not_reported_while_undefined(pack, reader):
    pack.prediction(predicted=1.0, actual=2.0, model="ctr")
    pack.prediction(predicted=3.0, actual=2.0, model="ctr")  # constant actuals: SST = 0

    found = collect(reader)
    assert values(found[semconv.METRIC_ADPLATFORM_PREDICTION_MAE]) == {
        frozenset({("model", "ctr")}): pytest.approx(1.0)
    }
    assert semconv.METRIC_ADPLATFORM_PREDICTION_R2 not in found


def test_top_campaigns_gauge_is_capped_and_ordered(pack, reader):
    for campaign, revenue in [("a", 10), ("b", 40), ("c", 30), ("d", 20), ("a", 5), ("e", 1)]:
        pack.campaign_result(campaign, spend_usd=1.0, revenue_usd=revenue, platform="meta")

    top = values(collect(reader)[semconv.METRIC_ADPLATFORM_TOP_CAMPAIGN_REVENUE])
    assert top == {
        frozenset({("campaign", "b")}): 40.0,
        frozenset({("campaign", "c")}): 30.0,
        frozenset({("campaign", "d")}): 20.0,
    }


def test_top_campaigns_tracking_is_bounded_and_only_overestimates():
    top = TopCampaigns(slots=2)
    top.add("a", 10)
    top.add("b", 3)
    top.add("c", 4)  # takes b's slot and inherits its 3: reported 7, true 4

    assert top.top(5) == [("a", 10.0), ("c", 7.0)]


def test_active_users_gauge(pack, reader):
    pack.set_active_users(120)
    pack.set_active_users(118)

    assert collect(reader)[semconv.METRIC_ADPLATFORM_ACTIVE_USERS][0].value == 118


def test_pack_exports_over_real_otlp_http():
    with OTLPReceiver() as receiver:
        exporter = OTLPMetricExporter(endpoint=f"{receiver.endpoint}/v1/metrics")
        provider = MeterProvider(
            metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=60_000)]
        )
        pack = AdPlatformKPIs(KPIRegistry(provider))
        pack.campaign_result("cmp-9", spend_usd=10.0, revenue_usd=35.0, platform="meta", tier="pro")
        pack.ad_published(platform="meta")
        provider.shutdown()  # flushes through the exporter

        revenue = receiver.points(semconv.METRIC_ADPLATFORM_REVENUE)
        top = receiver.points(semconv.METRIC_ADPLATFORM_TOP_CAMPAIGN_REVENUE)

    assert [(p.attributes, p.value, p.unit, p.is_monotonic) for p in revenue] == [
        ({"platform": "meta", "tier": "pro"}, 35.0, "USD", True)
    ]
    assert [(p.attributes, p.value) for p in top] == [({"campaign": "cmp-9"}, 35.0)]
    assert all(p.scope == "otel_obs.business" for p in revenue + top)
