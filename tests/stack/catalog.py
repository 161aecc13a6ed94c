"""Every metric otel-obs emits: its instrument, its unit and the names Prometheus stores.

The Prometheus names are written out by hand from the translation rules of the Collector's
prometheus exporter (dots to underscores, unit words appended, ``_total`` on monotonic
sums, ``_bucket``/``_sum``/``_count`` on histograms); the end-to-end test proves them against
the real Collector and Prometheus, and collector/METRICS.md is checked against this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from otel_obs import semconv


@dataclass(frozen=True)
class Metric:
    name: str
    instrument: str  # counter | histogram | up_down_counter | gauge
    unit: str
    prometheus: str  # the base name Prometheus stores

    @property
    def series(self) -> tuple[str, ...]:
        """Every metric name Prometheus holds for this instrument."""
        if self.instrument == "histogram":
            return tuple(f"{self.prometheus}_{suffix}" for suffix in ("bucket", "sum", "count"))
        return (self.prometheus,)

    @property
    def query_name(self) -> str:
        """The name a PromQL rate() or sum() starts from."""
        return self.series[0]


CATALOG: tuple[Metric, ...] = (
    # GenAI (semantic conventions, plus cost in USD)
    Metric(semconv.METRIC_GEN_AI_TOKEN_USAGE, "histogram", "{token}", "gen_ai_client_token_usage"),
    Metric(
        semconv.METRIC_GEN_AI_OPERATION_DURATION,
        "histogram",
        "s",
        "gen_ai_client_operation_duration_seconds",
    ),
    Metric(
        semconv.METRIC_GEN_AI_TIME_TO_FIRST_CHUNK,
        "histogram",
        "s",
        "gen_ai_client_operation_time_to_first_chunk_seconds",
    ),
    Metric(semconv.METRIC_GEN_AI_COST, "counter", "USD", "gen_ai_client_cost_USD_total"),
    Metric(
        semconv.METRIC_GEN_AI_COST_SAVED, "counter", "USD", "gen_ai_client_cost_saved_USD_total"
    ),
    Metric(semconv.METRIC_GEN_AI_ERRORS, "counter", "{error}", "gen_ai_client_errors_total"),
    Metric(
        semconv.METRIC_GEN_AI_UNPRICED_CALLS,
        "counter",
        "{call}",
        "gen_ai_client_unpriced_calls_total",
    ),
    Metric(
        semconv.METRIC_GEN_AI_CACHE_TOKENS, "counter", "{token}", "gen_ai_client_cache_tokens_total"
    ),
    # HTTP (stable conventions)
    Metric(
        semconv.METRIC_HTTP_SERVER_REQUEST_DURATION,
        "histogram",
        "s",
        "http_server_request_duration_seconds",
    ),
    Metric(
        semconv.METRIC_HTTP_SERVER_ACTIVE_REQUESTS,
        "up_down_counter",
        "{request}",
        "http_server_active_requests",
    ),
    # Celery
    Metric(semconv.METRIC_CELERY_TASK_DURATION, "histogram", "s", "celery_task_duration_seconds"),
    Metric(semconv.METRIC_CELERY_TASK_OUTCOMES, "counter", "{task}", "celery_task_outcomes_total"),
    Metric(
        semconv.METRIC_CELERY_TASK_QUEUE_WAIT, "histogram", "s", "celery_task_queue_wait_seconds"
    ),
    Metric(semconv.METRIC_CELERY_TASK_RETRIES, "counter", "{retry}", "celery_task_retries_total"),
    Metric(semconv.METRIC_CELERY_QUEUE_DEPTH, "gauge", "{task}", "celery_queue_depth"),
    # Telemetry about telemetry
    Metric(semconv.METRIC_EXPORT_DROPPED, "counter", "{item}", "otel_obs_export_dropped_total"),
    # Ad-platform business KPIs
    Metric(
        semconv.METRIC_ADPLATFORM_CAMPAIGNS_CREATED,
        "counter",
        "{campaign}",
        "adplatform_campaigns_created_total",
    ),
    Metric(
        semconv.METRIC_ADPLATFORM_ADS_PUBLISHED, "counter", "{ad}", "adplatform_ads_published_total"
    ),
    Metric(
        semconv.METRIC_ADPLATFORM_VIDEO_GENERATIONS,
        "counter",
        "{generation}",
        "adplatform_video_generations_total",
    ),
    Metric(
        semconv.METRIC_ADPLATFORM_VIDEO_GENERATION_DURATION,
        "histogram",
        "s",
        "adplatform_video_generation_duration_seconds",
    ),
    Metric(semconv.METRIC_ADPLATFORM_AD_SPEND, "counter", "USD", "adplatform_ad_spend_USD_total"),
    Metric(semconv.METRIC_ADPLATFORM_REVENUE, "counter", "USD", "adplatform_revenue_USD_total"),
    Metric(semconv.METRIC_ADPLATFORM_ROAS, "histogram", "1", "adplatform_roas"),
    Metric(
        semconv.METRIC_ADPLATFORM_PREDICTION_ERROR, "histogram", "1", "adplatform_prediction_error"
    ),
    Metric(
        semconv.METRIC_ADPLATFORM_PREDICTION_MAE, "gauge", "1", "adplatform_prediction_mae_ratio"
    ),
    Metric(semconv.METRIC_ADPLATFORM_PREDICTION_R2, "gauge", "1", "adplatform_prediction_r2_ratio"),
    Metric(
        semconv.METRIC_ADPLATFORM_TOP_CAMPAIGN_REVENUE,
        "gauge",
        "USD",
        "adplatform_campaign_top_revenue_USD",
    ),
    Metric(semconv.METRIC_ADPLATFORM_ACTIVE_USERS, "gauge", "{user}", "adplatform_users_active"),
)


def semconv_metric_names() -> set[str]:
    """The values of every METRIC_* constant in otel_obs.semconv."""
    return {
        value
        for key, value in vars(semconv).items()
        if key.startswith("METRIC_") and isinstance(value, str)
    }
