"""Business KPIs as metrics: declare a KPI once with its allowed attributes, record it in one line.

    orders = business.counter(
        "shop.orders.placed",
        unit="{order}",
        description="Orders placed",
        attributes={"channel": ("web", "app"), "country": None},
    )
    orders.add(1, channel="web", country="FR")

Attribute sets stay bounded whatever the caller passes: a key that was not declared is
dropped, a value outside a declared set is recorded as ``"other"``, and a key declared
without a set keeps its first ``max_values`` distinct values and records later ones as
``"other"``. Each of these is reported once per KPI and key in the ``otel_obs`` log, never
with the value itself.

A KPI uses the global meter provider unless it is given one, and looks the provider up on
first use, so KPIs can be declared at import time, before ``otel_obs.configure()``; values
recorded before a real provider is installed are dropped. ``AdPlatformKPIs`` is the pack
for an advertising platform that the demo and the business dashboard use.
"""

from __future__ import annotations

import enum
import heapq
import math
import re
import threading
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from otel_obs import semconv
from otel_obs._diag import warn_once
from otel_obs._guard import guard
from otel_obs.version import __version__

__all__ = [
    "KPI",
    "OTHER",
    "AdPlatformKPIs",
    "Counter",
    "Gauge",
    "Histogram",
    "KPIRegistry",
    "ObservableGauge",
    "UpDownCounter",
    "counter",
    "gauge",
    "histogram",
    "observable_gauge",
    "up_down_counter",
]

OTHER = "other"
"""The value recorded in place of any attribute value outside the KPI's bounds."""

DEFAULT_MAX_VALUES = 100
"""Distinct values kept for an attribute key declared without an allowed set."""

MAX_VALUE_LENGTH = 128
"""Attribute values are cut to this many characters: labels are names, not payloads."""

METER_NAME = "otel_obs.business"

# The instrument-name syntax of the OpenTelemetry metrics API.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-/]{0,254}")

AttributeSpec = Mapping[str, "Collection[Any] | None"]
Measurement = tuple[float, Mapping[str, Any]]


class AttributeBounds:
    """Keeps the attribute sets of one KPI within its declared keys and values."""

    def __init__(self, kpi_name: str, spec: AttributeSpec, max_values: int | None) -> None:
        # max_values=None leaves free keys uncapped: for callers that bound the sets themselves.
        self._kpi_name = kpi_name
        self._allowed = {
            key: None if values is None else frozenset(_label(v) for v in values)
            for key, values in spec.items()
        }
        self._max_values = max_values
        self._seen: dict[str, set[str]] = {k: set() for k, v in self._allowed.items() if v is None}
        self._lock = threading.Lock()

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(self._allowed)

    def apply(self, given: Mapping[str, Any]) -> dict[str, str]:
        """Return ``given`` with unknown keys dropped and out-of-bounds values as ``OTHER``."""
        bounded: dict[str, str] = {}
        for key, value in given.items():
            if value is None:
                continue
            if key not in self._allowed:
                # Once per KPI, not per key: undeclared key names are unbounded too.
                self._warn(
                    key, "is not a declared attribute and was dropped", once_for="undeclared"
                )
                continue
            bounded[key] = self._bound_value(key, _label(value)[:MAX_VALUE_LENGTH])
        return bounded

    def _bound_value(self, key: str, value: str) -> str:
        allowed = self._allowed[key]
        if allowed is not None:
            if value in allowed or value == OTHER:
                return value
            self._warn(key, f"got a value outside its allowed set, recorded as {OTHER!r}")
            return OTHER

        if self._max_values is None:
            return value
        seen = self._seen[key]
        with self._lock:
            if value in seen:
                return value
            if len(seen) < self._max_values:
                seen.add(value)
                return value
        self._warn(key, f"has more than {self._max_values} distinct values; new ones are {OTHER!r}")
        return OTHER

    def _warn(self, key: str, what: str, once_for: str = "") -> None:
        warn_once(
            f"business:{self._kpi_name}:{once_for or key + ':' + what}",
            "otel-obs: KPI %s: attribute %r %s",
            self._kpi_name,
            key,
            what,
        )


class KPI:
    """A declared business metric; each kind adds its one recording method."""

    kind = ""

    def __init__(
        self,
        name: str,
        *,
        unit: str = "",
        description: str = "",
        attributes: AttributeSpec | None = None,
        max_values: int = DEFAULT_MAX_VALUES,
        meter_provider: metrics.MeterProvider | None = None,
        enabled: bool = True,
    ) -> None:
        self.name = name
        self.unit = unit
        self.description = description
        self._bounds = AttributeBounds(name, attributes or {}, max_values)
        self._meter_provider = meter_provider
        self._instrument: Any = None
        self._lock = threading.Lock()
        # A malformed declaration disables the KPI instead of failing the import that made it.
        self.enabled = False
        if enabled:
            with guard(f"declaring KPI {name!r}"):
                _check_declaration(name, attributes or {}, max_values)
                self.enabled = True

    @property
    def attribute_keys(self) -> frozenset[str]:
        return self._bounds.keys

    def _create(self, meter: metrics.Meter) -> Any:
        raise NotImplementedError

    def _get_instrument(self) -> Any:
        if self._instrument is None:
            with self._lock:
                if self._instrument is None:
                    provider = self._meter_provider or metrics.get_meter_provider()
                    meter = provider.get_meter(METER_NAME, __version__)
                    self._instrument = self._create(meter)
        return self._instrument

    def _record(
        self,
        method: str,
        value: float,
        attributes: Mapping[str, Any] | None,
        extra: Mapping[str, Any],
    ) -> None:
        if not self.enabled:
            return
        with guard(f"recording KPI {self.name}"):
            number = _number(value)
            if not self._accepts(number):
                return

            bounded = self._bounds.apply({**(attributes or {}), **extra})
            getattr(self._get_instrument(), method)(number, bounded)

    def _accepts(self, number: float) -> bool:
        if math.isfinite(number):
            return True
        warn_once(
            f"business:{self.name}:nonfinite",
            "otel-obs: KPI %s: a non-finite value was dropped",
            self.name,
        )
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, unit={self.unit!r})"


class Counter(KPI):
    """A total that only goes up: things done, money earned."""

    kind = "counter"

    def add(
        self, amount: float = 1, attributes: Mapping[str, Any] | None = None, **extra: Any
    ) -> None:
        self._record("add", amount, attributes, extra)

    def _accepts(self, number: float) -> bool:
        if not super()._accepts(number):
            return False
        if number >= 0:
            return True
        warn_once(
            f"business:{self.name}:negative",
            "otel-obs: KPI %s: a negative amount was dropped (counters only go up)",
            self.name,
        )
        return False

    def _create(self, meter: metrics.Meter) -> Any:
        return meter.create_counter(self.name, unit=self.unit, description=self.description)


class UpDownCounter(KPI):
    """A level changed by increments: items in a queue, open sessions."""

    kind = "up_down_counter"

    def add(self, amount: float, attributes: Mapping[str, Any] | None = None, **extra: Any) -> None:
        self._record("add", amount, attributes, extra)

    def _create(self, meter: metrics.Meter) -> Any:
        return meter.create_up_down_counter(self.name, unit=self.unit, description=self.description)


class Gauge(KPI):
    """A level set to its current value: active users, a model's accuracy."""

    kind = "gauge"

    def set(self, value: float, attributes: Mapping[str, Any] | None = None, **extra: Any) -> None:
        self._record("set", value, attributes, extra)

    def _create(self, meter: metrics.Meter) -> Any:
        return meter.create_gauge(self.name, unit=self.unit, description=self.description)


class Histogram(KPI):
    """A distribution of values: durations, order sizes, returns on ad spend."""

    kind = "histogram"

    def __init__(self, name: str, *, buckets: Sequence[float] | None = None, **kwargs: Any) -> None:
        self.buckets = tuple(buckets) if buckets is not None else None
        super().__init__(name, **kwargs)

    def record(
        self, value: float, attributes: Mapping[str, Any] | None = None, **extra: Any
    ) -> None:
        self._record("record", value, attributes, extra)

    def _create(self, meter: metrics.Meter) -> Any:
        return meter.create_histogram(
            self.name,
            unit=self.unit,
            description=self.description,
            explicit_bucket_boundaries_advisory=self.buckets,
        )


class ObservableGauge(KPI):
    """A gauge read at each collection from ``callback() -> iterable of (value, attributes)``.

    Only what the callback returns is exported at each collection, so the bound here is on
    the observations per collection (``max_values``) rather than on the values ever seen:
    a top-N list may change its members over time without running out of values.
    """

    kind = "observable_gauge"

    def __init__(
        self,
        name: str,
        *,
        callback: Callable[[], Iterable[Measurement]],
        max_values: int = DEFAULT_MAX_VALUES,
        **kwargs: Any,
    ) -> None:
        self._callback = callback
        self._max_observations = max_values
        super().__init__(name, max_values=max_values, **kwargs)
        self._bounds = AttributeBounds(name, kwargs.get("attributes") or {}, None)
        if self.enabled:
            # Created at once: nothing records into an observable instrument to create it later.
            self._get_instrument()

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        observations: list[Observation] = []
        with guard(f"observing KPI {self.name}"):
            for value, attributes in self._callback():
                if len(observations) == self._max_observations:
                    warn_once(
                        f"business:{self.name}:observations",
                        "otel-obs: KPI %s: more than %d observations in one collection; "
                        "the rest were dropped",
                        self.name,
                        self._max_observations,
                    )
                    break
                number = _number(value)
                if math.isfinite(number):
                    observations.append(Observation(number, self._bounds.apply(attributes)))
        return observations

    def _create(self, meter: metrics.Meter) -> Any:
        return meter.create_observable_gauge(
            self.name, callbacks=[self._observe], unit=self.unit, description=self.description
        )


class KPIRegistry:
    """KPIs sharing one meter provider; declaring a name again returns the same KPI."""

    def __init__(self, meter_provider: metrics.MeterProvider | None = None) -> None:
        self._meter_provider = meter_provider
        self._kpis: dict[str, KPI] = {}
        self._lock = threading.Lock()

    def counter(self, name: str, **spec: Any) -> Counter:
        return self._declare(Counter, name, spec)

    def up_down_counter(self, name: str, **spec: Any) -> UpDownCounter:
        return self._declare(UpDownCounter, name, spec)

    def gauge(self, name: str, **spec: Any) -> Gauge:
        return self._declare(Gauge, name, spec)

    def histogram(self, name: str, **spec: Any) -> Histogram:
        return self._declare(Histogram, name, spec)

    def observable_gauge(
        self, name: str, callback: Callable[[], Iterable[Measurement]], **spec: Any
    ) -> ObservableGauge:
        return self._declare(ObservableGauge, name, {**spec, "callback": callback})

    def get(self, name: str) -> KPI | None:
        return self._kpis.get(name)

    def _declare(self, cls: type[Any], name: str, spec: dict[str, Any]) -> Any:
        with self._lock:
            existing = self._kpis.get(name)
            if existing is None:
                kpi = cls(name, meter_provider=self._meter_provider, **spec)
                self._kpis[name] = kpi
                return kpi

        if type(existing) is cls and existing.unit == spec.get("unit", ""):
            return existing
        # Two declarations disagree: the second one records nothing rather than mixing series.
        kpi = cls(name, meter_provider=self._meter_provider, enabled=False, **spec)
        with guard(f"declaring KPI {name!r}"):
            raise ValueError(
                f"KPI {name!r} is already declared as a {existing.kind} in {existing.unit!r}; "
                f"a {cls.kind} in {spec.get('unit', '')!r} cannot share its name"
            )
        return kpi


_registry = KPIRegistry()


def counter(name: str, **spec: Any) -> Counter:
    """Declare a counter on the global provider: ``unit``, ``description``, ``attributes``."""
    return _registry.counter(name, **spec)


def up_down_counter(name: str, **spec: Any) -> UpDownCounter:
    """Declare an up-down counter on the global meter provider."""
    return _registry.up_down_counter(name, **spec)


def gauge(name: str, **spec: Any) -> Gauge:
    """Declare a gauge on the global meter provider."""
    return _registry.gauge(name, **spec)


def histogram(name: str, **spec: Any) -> Histogram:
    """Declare a histogram on the global meter provider (``buckets`` as bucket boundaries)."""
    return _registry.histogram(name, **spec)


def observable_gauge(
    name: str, callback: Callable[[], Iterable[Measurement]], **spec: Any
) -> ObservableGauge:
    """Declare a gauge read from ``callback`` at each collection, on the global meter provider."""
    return _registry.observable_gauge(name, callback, **spec)


# --- The ad-platform pack ------------------------------------------------------------------

PLATFORMS = ("meta", "google", "tiktok", "linkedin", "snapchat", "pinterest", "x", "amazon")
TIERS = ("free", "starter", "pro", "enterprise")
VIDEO_STATUSES = ("succeeded", "failed", "cancelled")


class PredictionWindow:
    """The last ``size`` (predicted, actual) pairs of one model, for MAE and R²."""

    def __init__(self, size: int) -> None:
        self._pairs: deque[tuple[float, float]] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, predicted: float, actual: float) -> None:
        with self._lock:
            self._pairs.append((predicted, actual))

    def mae(self) -> float | None:
        pairs = self._snapshot()
        if not pairs:
            return None
        return sum(abs(p - a) for p, a in pairs) / len(pairs)

    def r2(self) -> float | None:
        """1 - SSE/SST; undefined (None) with fewer than two pairs or constant actuals."""
        pairs = self._snapshot()
        if len(pairs) < 2:
            return None
        mean = sum(a for _, a in pairs) / len(pairs)
        total = sum((a - mean) ** 2 for _, a in pairs)
        if total == 0:
            return None
        residual = sum((a - p) ** 2 for p, a in pairs)
        return 1.0 - residual / total

    def _snapshot(self) -> list[tuple[float, float]]:
        with self._lock:
            return list(self._pairs)


class TopCampaigns:
    """Approximate heaviest campaigns by revenue in a fixed number of slots (space-saving).

    Every campaign is counted while there is a free slot; after that, a new campaign takes
    the slot of the smallest one and inherits its total, so a total can only be
    overestimated, by at most the smallest tracked total. Campaigns with real weight stay
    in, and memory stays at ``slots`` entries whatever the number of campaigns.
    """

    def __init__(self, slots: int) -> None:
        self._slots = slots
        self._totals: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, campaign: str, amount: float) -> None:
        with self._lock:
            if campaign in self._totals or len(self._totals) < self._slots:
                self._totals[campaign] = self._totals.get(campaign, 0.0) + amount
                return
            smallest = min(self._totals, key=self._totals.__getitem__)
            floor = self._totals.pop(smallest)
            self._totals[campaign] = floor + amount

    def top(self, count: int) -> list[tuple[str, float]]:
        with self._lock:
            return heapq.nlargest(count, self._totals.items(), key=lambda item: item[1])


class AdPlatformKPIs:
    """The KPIs of an advertising platform, each recorded in one call.

    Top campaigns: a label per campaign id on a counter would grow without bound, so the
    pack reports a gauge of revenue for the ``top_campaigns`` largest campaigns of this
    process only (tracked approximately in ``tracked_campaigns`` slots). Series stay at
    ``top_campaigns`` per instance; the dashboard sums them across instances and keeps the
    top ten. Totals by platform and tier are exact in ``adplatform.revenue``.

    Prediction accuracy: every prediction records its absolute error in a histogram, so
    the MAE over any time range and any number of instances is ``_sum / _count``. R²
    cannot be rebuilt from absolute errors, so MAE and R² are also reported per model as
    gauges over the last ``prediction_window`` predictions of this process.
    """

    def __init__(
        self,
        registry: KPIRegistry | None = None,
        *,
        platforms: Collection[str] = PLATFORMS,
        tiers: Collection[str] = TIERS,
        models: Collection[str] | None = None,
        top_campaigns: int = 10,
        tracked_campaigns: int = 1000,
        prediction_window: int = 500,
    ) -> None:
        kpis = registry or _registry
        self._top_count = top_campaigns
        self._top = TopCampaigns(max(tracked_campaigns, top_campaigns))
        self._window_size = prediction_window
        self._windows: dict[str, PredictionWindow] = {}
        self._windows_lock = threading.Lock()
        platform = {"platform": tuple(platforms)}
        sales = {"platform": tuple(platforms), "tier": tuple(tiers)}
        model = {"model": None if models is None else tuple(models)}

        self.campaigns_created = kpis.counter(
            semconv.METRIC_ADPLATFORM_CAMPAIGNS_CREATED,
            unit="{campaign}",
            description="Advertising campaigns created",
            attributes=sales,
        )
        self.ads_published = kpis.counter(
            semconv.METRIC_ADPLATFORM_ADS_PUBLISHED,
            unit="{ad}",
            description="Ads published to an advertising platform",
            attributes=platform,
        )
        self.video_generations = kpis.counter(
            semconv.METRIC_ADPLATFORM_VIDEO_GENERATIONS,
            unit="{generation}",
            description="Ad video generations finished, by outcome",
            attributes={"status": VIDEO_STATUSES},
        )
        self.video_generation_duration = kpis.histogram(
            semconv.METRIC_ADPLATFORM_VIDEO_GENERATION_DURATION,
            unit="s",
            description="Time to generate one ad video",
            attributes={"status": VIDEO_STATUSES},
            buckets=semconv.ADPLATFORM_VIDEO_DURATION_BUCKETS,
        )
        self.ad_spend = kpis.counter(
            semconv.METRIC_ADPLATFORM_AD_SPEND,
            unit="USD",
            description="Money spent on advertising platforms",
            attributes=sales,
        )
        self.revenue = kpis.counter(
            semconv.METRIC_ADPLATFORM_REVENUE,
            unit="USD",
            description="Revenue attributed to advertising campaigns",
            attributes=sales,
        )
        self.roas = kpis.histogram(
            semconv.METRIC_ADPLATFORM_ROAS,
            unit="1",
            description="Return on ad spend of one campaign report (revenue / spend)",
            attributes=platform,
            buckets=semconv.ADPLATFORM_ROAS_BUCKETS,
        )
        self.prediction_error = kpis.histogram(
            semconv.METRIC_ADPLATFORM_PREDICTION_ERROR,
            unit="1",
            description="Absolute error of one prediction, in the unit of the predicted value",
            attributes=model,
            buckets=semconv.ADPLATFORM_PREDICTION_ERROR_BUCKETS,
        )
        self.prediction_mae = kpis.observable_gauge(
            semconv.METRIC_ADPLATFORM_PREDICTION_MAE,
            self._observe_mae,
            unit="1",
            description="Mean absolute error over the last predictions of each model",
            attributes=model,
        )
        self.prediction_r2 = kpis.observable_gauge(
            semconv.METRIC_ADPLATFORM_PREDICTION_R2,
            self._observe_r2,
            unit="1",
            description="R² (coefficient of determination) over the last predictions of each model",
            attributes=model,
        )
        self.top_campaign_revenue = kpis.observable_gauge(
            semconv.METRIC_ADPLATFORM_TOP_CAMPAIGN_REVENUE,
            self._observe_top_campaigns,
            unit="USD",
            description="Revenue of this process's largest campaigns since it started",
            attributes={"campaign": None},
            max_values=top_campaigns,
        )
        self.active_users = kpis.gauge(
            semconv.METRIC_ADPLATFORM_ACTIVE_USERS,
            unit="{user}",
            description="Users active on the platform now",
        )

    def campaign_created(self, *, platform: str, tier: str | None = None) -> None:
        self.campaigns_created.add(1, platform=platform, tier=tier)

    def ad_published(self, *, platform: str, count: int = 1) -> None:
        self.ads_published.add(count, platform=platform)

    def video_generated(self, *, status: str, duration_s: float | None = None) -> None:
        self.video_generations.add(1, status=status)
        if duration_s is not None:
            self.video_generation_duration.record(duration_s, status=status)

    def campaign_result(
        self,
        campaign: str,
        *,
        spend_usd: float,
        revenue_usd: float,
        platform: str,
        tier: str | None = None,
    ) -> None:
        """Record one reporting period of a campaign: spend, revenue, ROAS and top campaigns."""
        with guard("recording a campaign result"):
            self.ad_spend.add(spend_usd, platform=platform, tier=tier)
            self.revenue.add(revenue_usd, platform=platform, tier=tier)
            if spend_usd > 0:
                self.roas.record(revenue_usd / spend_usd, platform=platform)
            self._top.add(str(campaign)[:128], float(revenue_usd))

    def prediction(self, *, predicted: float, actual: float, model: str = "roas") -> None:
        """Record one prediction whose true value is now known."""
        with guard("recording a prediction"):
            predicted, actual = _number(predicted), _number(actual)
            self.prediction_error.record(abs(predicted - actual), model=model)
            self._window(model).add(predicted, actual)

    def set_active_users(self, count: int) -> None:
        self.active_users.set(count)

    def _window(self, model: str) -> PredictionWindow:
        with self._windows_lock:
            window = self._windows.get(model)
            if window is None:
                window = self._windows[model] = PredictionWindow(self._window_size)
            return window

    def _windows_snapshot(self) -> list[tuple[str, PredictionWindow]]:
        with self._windows_lock:
            return list(self._windows.items())

    def _observe_mae(self) -> Iterable[Measurement]:
        for model, window in self._windows_snapshot():
            value = window.mae()
            if value is not None:
                yield value, {"model": model}

    def _observe_r2(self) -> Iterable[Measurement]:
        for model, window in self._windows_snapshot():
            value = window.r2()
            if value is not None:
                yield value, {"model": model}

    def _observe_top_campaigns(self) -> Iterable[Measurement]:
        for campaign, total in self._top.top(self._top_count):
            yield total, {"campaign": campaign}


_adplatform: AdPlatformKPIs | None = None
_adplatform_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    # `otel_obs.business.adplatform` is declared on first use, so importing this module
    # declares nothing a service did not ask for.
    global _adplatform
    if name != "adplatform":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _adplatform_lock:
        if _adplatform is None:
            _adplatform = AdPlatformKPIs()
        return _adplatform


# --- helpers ---------------------------------------------------------------------------------


def _check_declaration(name: str, attributes: AttributeSpec, max_values: int) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"KPI name {name!r} is not a valid instrument name "
            "(a letter, then up to 254 letters, digits, '_', '.', '-' or '/')"
        )
    if max_values < 1:
        raise ValueError(f"KPI {name!r}: max_values must be at least 1, got {max_values}")
    for key, values in attributes.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"KPI {name!r}: attribute keys must be non-empty strings")
        if isinstance(values, (str, bytes)):
            raise TypeError(
                f"KPI {name!r}: the allowed values of {key!r} must be a collection of values, "
                "not one string"
            )


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"a KPI value must be an int or a float, not {type(value).__name__}")
    return value


def _label(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
