"""Percentiles from histogram buckets, as PromQL's histogram_quantile computes them."""

from __future__ import annotations

import math

import pytest

from otel_obs.demo.metrics import Aggregate, histogram_quantile
from otel_obs.receiver import Point

INF = math.inf
BOUNDS = [0.1, 0.5, 1.0, INF]


@pytest.mark.parametrize(
    ("q", "cumulative", "expected"),
    [
        # rank 20 lies in (0.1, 0.5], 10 of its 20 observations in: 0.1 + 0.4 * 10/20
        (0.5, [10, 30, 40, 40], 0.3),
        # rank 38 lies in (0.5, 1.0], 8 of 10 in: 0.5 + 0.5 * 8/10
        (0.95, [10, 30, 40, 40], 0.9),
        # rank 10 fills the lowest bucket, which starts at 0
        (0.25, [10, 30, 40, 40], 0.1),
        # rank 49.5 lies in the +Inf bucket: the highest finite bound
        (0.99, [10, 30, 40, 50], 1.0),
        # q above 1 and below 0
        (1.5, [10, 30, 40, 40], INF),
        (-0.1, [10, 30, 40, 40], -INF),
    ],
)
def test_histogram_quantile_matches_promql(
    q: float, cumulative: list[int], expected: float
) -> None:
    assert histogram_quantile(q, BOUNDS, cumulative) == pytest.approx(expected)


def test_histogram_quantile_is_nan_without_observations_or_inf_bucket() -> None:
    assert math.isnan(histogram_quantile(0.5, BOUNDS, [0, 0, 0, 0]))
    assert math.isnan(histogram_quantile(0.5, [0.1, 0.5], [1, 2]))


def test_histogram_quantile_repairs_non_monotonic_counts_like_promql() -> None:
    # Counts that dip (a scrape between two updates) are raised to the running maximum:
    # [10, 8, 40, 40] is read as [10, 10, 40, 40]; rank 20 is in (0.5, 1]: 0.5 + 0.5 * 10/30.
    assert histogram_quantile(0.5, BOUNDS, [10, 8, 40, 40]) == pytest.approx(0.5 + 0.5 * 10 / 30)


def _histogram(counts: list[int], total: float) -> Point:
    return Point(
        metric="m",
        unit="s",
        kind="histogram",
        attributes={},
        resource={},
        scope="s",
        count=sum(counts),
        sum=total,
        bucket_counts=counts,
        bounds=BOUNDS[:-1],
    )


def test_aggregate_sums_buckets_of_several_processes_before_the_quantile() -> None:
    merged = Aggregate()
    merged.add(_histogram([10, 0, 0, 0], 0.5))
    merged.add(_histogram([0, 20, 10, 0], 12.0))

    assert (merged.count, merged.sum) == (40, 12.5)
    assert merged.bucket_counts == [10, 20, 10, 0]
    assert merged.quantile(0.5) == pytest.approx(0.3)
