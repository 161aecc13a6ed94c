"""Reading metric points the way a backend does: final values per series, sums, quantiles.

Points arrive from several processes, each exporting every interval. A cumulative series
(one process, one attribute set) is worth its latest point; a delta series is worth the
sum of its points. ``histogram_quantile`` follows PromQL's function of that name exactly,
so the percentiles printed here are the ones a Prometheus query over the same buckets gives.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from otel_obs.receiver import Point

DELTA = 1  # AggregationTemporality.DELTA in OTLP


@dataclass
class Aggregate:
    """The sum of several series: a counter total, or a histogram's count, sum and buckets."""

    value: float = 0.0
    count: int = 0
    sum: float = 0.0
    bounds: list[float] = field(default_factory=list)
    bucket_counts: list[int] = field(default_factory=list)

    def add(self, point: Point) -> None:
        if point.kind in ("sum", "gauge"):
            self.value += point.value or 0.0
            return
        self.count += point.count or 0
        self.sum += point.sum or 0.0
        if point.kind != "histogram":
            return
        if not self.bounds:
            self.bounds = list(point.bounds)
            self.bucket_counts = [0] * len(point.bucket_counts)
        if list(point.bounds) == self.bounds:
            self.bucket_counts = [a + b for a, b in zip(self.bucket_counts, point.bucket_counts)]

    def quantile(self, q: float) -> float:
        cumulative, running = [], 0
        for count in self.bucket_counts:
            running += count
            cumulative.append(running)
        return histogram_quantile(q, [*self.bounds, math.inf], cumulative)


def _series_key(point: Point) -> str:
    return json.dumps(
        [
            point.metric,
            sorted(point.resource.items()),
            point.scope,
            sorted(point.attributes.items()),
        ],
        default=str,
    )


def final_points(points: Iterable[Point]) -> list[Point]:
    """One point per series holding its whole value: the latest cumulative point, or the
    sum of a delta series' points (gauges: the latest)."""
    latest: dict[str, Point] = {}
    deltas: dict[str, list[Point]] = {}
    for point in points:
        key = _series_key(point)
        if point.temporality == DELTA:
            deltas.setdefault(key, []).append(point)
        elif key not in latest or point.time_ns >= latest[key].time_ns:
            latest[key] = point
    for key, series in deltas.items():
        merged = Aggregate()
        for point in series:
            merged.add(point)
        last = max(series, key=lambda p: p.time_ns)
        latest[key] = Point(
            **{
                **last.__dict__,
                "value": merged.value,
                "count": merged.count,
                "sum": merged.sum,
                "bucket_counts": merged.bucket_counts or last.bucket_counts,
            }
        )
    return list(latest.values())


def group(
    points: Iterable[Point], metric: str, key: Callable[[Point], Any]
) -> dict[Any, Aggregate]:
    """Final values of ``metric`` summed across series by ``key(point)``."""
    out: dict[Any, Aggregate] = {}
    for point in points:
        if point.metric != metric:
            continue
        out.setdefault(key(point), Aggregate()).add(point)
    return out


def latest_gauges(points: Iterable[Point], metric: str) -> list[Point]:
    return [p for p in points if p.metric == metric]


def histogram_quantile(
    q: float, upper_bounds: Sequence[float], cumulative: Sequence[float]
) -> float:
    """PromQL's ``histogram_quantile`` over classic buckets (``le`` bounds, cumulative counts).

    The rank ``q * total`` is found in the first bucket whose cumulative count reaches it and
    interpolated linearly inside that bucket; the lowest bucket starts at 0 when its upper
    bound is positive; a rank in the ``+Inf`` bucket gives the highest finite bound.
    """
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    buckets = sorted(zip(upper_bounds, cumulative))
    if not buckets or not math.isinf(buckets[-1][0]):
        return math.nan
    buckets = _coalesce(buckets)
    _ensure_monotonic(buckets)
    if len(buckets) < 2:
        return math.nan
    observations = buckets[-1][1]
    if observations == 0:
        return math.nan

    rank = q * observations
    index = next((i for i in range(len(buckets) - 1) if buckets[i][1] >= rank), len(buckets) - 1)
    if index == len(buckets) - 1:
        return buckets[-2][0]
    if index == 0 and buckets[0][0] <= 0:
        return buckets[0][0]
    start, end, count = 0.0, buckets[index][0], buckets[index][1]
    if index > 0:
        start = buckets[index - 1][0]
        count -= buckets[index - 1][1]
        rank -= buckets[index - 1][1]
    return start + (end - start) * (rank / count)


def _coalesce(buckets: list[tuple[float, float]]) -> list[list[float]]:
    out: list[list[float]] = []
    for bound, count in buckets:
        if out and out[-1][0] == bound:
            out[-1][1] += count
        else:
            out.append([bound, count])
    return out


def _ensure_monotonic(buckets: list[list[float]]) -> None:
    highest = -math.inf
    for bucket in buckets:
        highest = max(highest, bucket[1])
        bucket[1] = highest
