"""Every attribute and metric name otel-obs emits, with units and bucket boundaries.

Names that the OpenTelemetry semantic conventions define are used as they are written
there; names of our own sit under the ``otel_obs.`` namespace, or under ``gen_ai.`` where
other GenAI tools already read the same name (``gen_ai.usage.cost``).
"""

from __future__ import annotations

# The semantic-conventions release whose GenAI and HTTP names we follow. Stated once here;
# the README quotes it and a test keeps the two in step.
SEMCONV_VERSION = "1.44.0"
SCHEMA_URL = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"

# --- GenAI attributes (semantic conventions) -------------------------------------------
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
OPENAI_API_TYPE = "openai.api.type"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"

# --- GenAI cost (ours; the name other GenAI tools read) --------------------------------
GEN_AI_USAGE_COST = "gen_ai.usage.cost"
GEN_AI_USAGE_COST_INPUT = "gen_ai.usage.cost.input"
GEN_AI_USAGE_COST_CACHE_READ = "gen_ai.usage.cost.cache_read"
GEN_AI_USAGE_COST_CACHE_CREATION = "gen_ai.usage.cost.cache_creation"
GEN_AI_USAGE_COST_OUTPUT = "gen_ai.usage.cost.output"
OTEL_OBS_COST_STATUS = "otel_obs.cost.status"
OTEL_OBS_COST_SOURCE = "otel_obs.cost.source"
OTEL_OBS_USAGE_STATUS = "otel_obs.usage.status"

# --- GenAI metrics ----------------------------------------------------------------------
METRIC_GEN_AI_TOKEN_USAGE = "gen_ai.client.token.usage"
METRIC_GEN_AI_OPERATION_DURATION = "gen_ai.client.operation.duration"
METRIC_GEN_AI_TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
METRIC_GEN_AI_COST = "gen_ai.client.cost"
METRIC_GEN_AI_COST_SAVED = "gen_ai.client.cost.saved"
METRIC_GEN_AI_ERRORS = "gen_ai.client.errors"
METRIC_GEN_AI_UNPRICED_CALLS = "gen_ai.client.unpriced_calls"
# Input tokens served from or written to a prompt cache, by ``otel_obs.cache.operation``
# (read, write): the part of gen_ai.client.token.usage's input that a cache touched.
METRIC_GEN_AI_CACHE_TOKENS = "gen_ai.client.cache.tokens"
OTEL_OBS_CACHE_OPERATION = "otel_obs.cache.operation"

# Bucket boundaries the GenAI conventions advise.
GEN_AI_TOKEN_USAGE_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)
GEN_AI_DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)

# --- HTTP (stable conventions) ----------------------------------------------------------
METRIC_HTTP_SERVER_REQUEST_DURATION = "http.server.request.duration"
METRIC_HTTP_SERVER_ACTIVE_REQUESTS = "http.server.active_requests"
HTTP_ROUTE = "http.route"
HTTP_REQUEST_METHOD = "http.request.method"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
HTTP_REQUEST_ID = "http.request.header.x-request-id"
REQUEST_ID_HEADER = "x-request-id"
HTTP_DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)

# --- Celery tasks (ours) ----------------------------------------------------------------
CELERY_TASK_NAME = "celery.task.name"
CELERY_TASK_OUTCOME = "celery.task.outcome"
CELERY_QUEUE = "messaging.destination.name"
METRIC_CELERY_TASK_DURATION = "celery.task.duration"
METRIC_CELERY_TASK_OUTCOMES = "celery.task.outcomes"
METRIC_CELERY_TASK_QUEUE_WAIT = "celery.task.queue_wait"
METRIC_CELERY_TASK_RETRIES = "celery.task.retries"
METRIC_CELERY_QUEUE_DEPTH = "celery.queue.depth"
# Outcome values of celery.task.outcomes; anything else Celery reports counts as "other".
CELERY_OUTCOMES = ("success", "failure", "retry", "revoked", "other")
# Message header that carries the publish time (Unix seconds) to the worker.
CELERY_PUBLISHED_AT_HEADER = "otel_obs_published_at"
# Tasks run from milliseconds to many minutes.
CELERY_DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    600.0, 1800.0,
)

# --- Telemetry about telemetry (ours) ---------------------------------------------------
METRIC_EXPORT_DROPPED = "otel_obs.export.dropped"
EXPORT_SIGNAL = "otel_obs.signal"
EXPORT_REASON = "otel_obs.reason"

# --- Ad-platform business KPIs (ours; otel_obs.business.AdPlatformKPIs) ------------------
METRIC_ADPLATFORM_CAMPAIGNS_CREATED = "adplatform.campaigns.created"
METRIC_ADPLATFORM_ADS_PUBLISHED = "adplatform.ads.published"
METRIC_ADPLATFORM_VIDEO_GENERATIONS = "adplatform.video.generations"
METRIC_ADPLATFORM_VIDEO_GENERATION_DURATION = "adplatform.video.generation.duration"
METRIC_ADPLATFORM_AD_SPEND = "adplatform.ad_spend"
METRIC_ADPLATFORM_REVENUE = "adplatform.revenue"
METRIC_ADPLATFORM_ROAS = "adplatform.roas"
METRIC_ADPLATFORM_PREDICTION_ERROR = "adplatform.prediction.error"
METRIC_ADPLATFORM_PREDICTION_MAE = "adplatform.prediction.mae"
METRIC_ADPLATFORM_PREDICTION_R2 = "adplatform.prediction.r2"
METRIC_ADPLATFORM_TOP_CAMPAIGN_REVENUE = "adplatform.campaign.top_revenue"
METRIC_ADPLATFORM_ACTIVE_USERS = "adplatform.users.active"
ADPLATFORM_ROAS_BUCKETS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 20.0)
ADPLATFORM_VIDEO_DURATION_BUCKETS = (1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
ADPLATFORM_PREDICTION_ERROR_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
