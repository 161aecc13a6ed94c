"""A bounded workload that sends, through the real SDK, every series the dashboards query.

Run one process per service; each exports metrics, traces and logs over OTLP/HTTP to the
Collector for ``--seconds`` and then flushes and exits:

    python tests/dashboards/workload.py --role api --endpoint http://127.0.0.1:4318 \
        --redis-url redis://127.0.0.1:6379/0 --seconds 20

What produces what:

- HTTP: a real FastAPI app instrumented by ``otel_obs.web`` (stable HTTP conventions),
  driven in-process; some requests fail with 5xx or an unhandled exception.
- GenAI: the real ``openai`` and ``anthropic`` clients, instrumented by ``otel_obs.ai``,
  calling the local LLM server of ``otel_obs.demo.llm_server``: priced and unpriced
  models, cache reads, and rate-limit errors.
- Redis: real commands against a real ``redis-server`` with redis-py's own OpenTelemetry
  metrics (command duration, connection pool state).
- Celery: a real worker (solo pool) on the Redis server, instrumented by ``otel_obs.tasks``,
  running tasks that succeed, fail and retry, enqueued in bursts so the queue has depth.
- Business: ``otel_obs.business.AdPlatformKPIs``.
- Host and runtime: ``opentelemetry-instrumentation-system-metrics``.

The demo's own workload can replace this one: anything that sends the same telemetry to the
Collector serves the dashboard test.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import threading
import time
import uuid
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_obs.business import AdPlatformKPIs, KPIRegistry

NAMESPACE = "adplatform"
ENVIRONMENT = "test"
PLATFORMS = ("meta", "google", "tiktok")

log = logging.getLogger("workload")


class Telemetry:
    """SDK providers for one service, exporting to the Collector every ``interval`` seconds."""

    def __init__(self, endpoint: str, service: str, interval: float) -> None:
        self.resource = Resource.create(
            {
                "service.name": service,
                "service.namespace": NAMESPACE,
                "service.instance.id": f"{service}-{uuid.uuid4().hex[:8]}",
                "deployment.environment.name": ENVIRONMENT,
            }
        )
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics"),
            export_interval_millis=interval * 1000,
        )
        self.meter_provider = MeterProvider(resource=self.resource, metric_readers=[reader])
        self.tracer_provider = TracerProvider(resource=self.resource)
        self.tracer_provider.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"), schedule_delay_millis=500
            )
        )
        self.logger_provider = LoggerProvider(resource=self.resource)
        self.logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(
                OTLPLogExporter(endpoint=f"{endpoint}/v1/logs"), schedule_delay_millis=500
            )
        )
        # redis-py reads the global providers; this process is one service, so set them.
        metrics.set_meter_provider(self.meter_provider)
        trace.set_tracer_provider(self.tracer_provider)
        log.addHandler(LoggingHandler(logger_provider=self.logger_provider))
        log.setLevel(logging.INFO)

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()
        self.meter_provider.shutdown()


def start_system_metrics(telemetry: Telemetry) -> None:
    from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor

    SystemMetricsInstrumentor().instrument(meter_provider=telemetry.meter_provider)


def build_api(telemetry: Telemetry) -> Any:
    """A FastAPI app under the official instrumentation, and a client that calls it in-process."""
    from fastapi import FastAPI, HTTPException
    from fastapi.testclient import TestClient

    from otel_obs.web import instrument_fastapi

    app = FastAPI()

    @app.get("/campaigns/{campaign_id}")
    def get_campaign(campaign_id: int) -> dict[str, int]:
        return {"id": campaign_id}

    @app.post("/campaigns")
    def create_campaign() -> dict[str, str]:
        time.sleep(random.choice((0.0, 0.0, 0.02)))
        return {"status": "created"}

    @app.get("/reports/slow")
    def slow_report() -> dict[str, str]:
        time.sleep(0.3)
        return {"status": "ok"}

    @app.get("/ads/publish")
    def publish() -> dict[str, str]:
        if random.random() < 0.2:
            raise HTTPException(status_code=503, detail="platform unavailable")
        return {"status": "published"}

    @app.get("/boom")
    def boom() -> None:
        log.error("report generation failed")
        raise RuntimeError("fixture failure")

    instrument_fastapi(
        app,
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
    )
    return TestClient(app, raise_server_exceptions=False)


def drive_api(client: Any) -> None:
    client.get(f"/campaigns/{random.randint(1, 500)}")
    client.post("/campaigns")
    client.get("/ads/publish")
    if random.random() < 0.15:
        client.get("/boom")
    if random.random() < 0.1:
        client.get("/reports/slow")


class LlmCalls:
    """Real openai and anthropic clients instrumented by ``otel_obs.ai``, on a local server."""

    PRICED = (("openai", "gpt-4o-mini"), ("anthropic", "claude-3-5-haiku-20241022"))
    UNPRICED = ("openai", "acme-llm-9000")

    def __init__(self, telemetry: Telemetry) -> None:
        from otel_obs import ai
        from otel_obs.demo.llm_server import LLMServer

        ai.instrument(None, telemetry.tracer_provider, telemetry.meter_provider)
        self.server = LLMServer().start()
        import anthropic
        import openai

        self.openai = openai.OpenAI(base_url=f"{self.server.url}/v1", api_key="test", max_retries=0)
        self.anthropic = anthropic.Anthropic(
            base_url=self.server.url, api_key="test", max_retries=0
        )

    def call(self) -> None:
        provider, model = random.choice(self.PRICED)
        if random.random() < 0.1:
            provider, model = self.UNPRICED
        usage = f"input={random.randint(200, 4000)},output={random.randint(20, 800)}"
        if random.random() < 0.5:
            usage += f",cached={random.randint(50, 150)}"
        headers = {"x-llm-usage": usage}
        if random.random() < 0.08:
            headers["x-llm-scenario"] = "error=429"
        try:
            self._send(provider, model, headers)
        except Exception:  # noqa: BLE001 (the 429s are wanted; their telemetry is the point)
            log.warning("LLM call failed", exc_info=False)

    def _send(self, provider: str, model: str, headers: dict[str, str]) -> None:
        messages = [{"role": "user", "content": "Write a tagline for a running shoe."}]
        if provider == "anthropic":
            self.anthropic.messages.create(
                model=model, max_tokens=64, messages=messages, extra_headers=headers
            )
        else:
            self.openai.chat.completions.create(
                model=model, messages=messages, extra_headers=headers
            )

    def stop(self) -> None:
        self.server.stop()


class CeleryWorker:
    """A real Celery worker (solo pool, Redis broker) instrumented by ``otel_obs.tasks``.

    The worker runs in the main thread, as ``celery worker`` does; the rest of the workload
    runs beside it, enqueues tasks in bursts so that the queue has depth, and ends the
    worker with SIGTERM (a warm shutdown) when the time is up.
    """

    def __init__(self, telemetry: Telemetry, redis_url: str) -> None:
        from celery import Celery

        from otel_obs.tasks import instrument_celery

        self.app = Celery("workload", broker=redis_url)
        self.app.conf.update(
            task_ignore_result=True,
            worker_hijack_root_logger=False,
            broker_connection_retry_on_startup=True,
        )

        @self.app.task(name="generate_video", bind=True, max_retries=1, default_retry_delay=0.2)
        def generate_video(task: Any) -> None:
            time.sleep(random.uniform(0.01, 0.08))
            roll = random.random()
            if roll < 0.1:
                raise RuntimeError("render farm unavailable")
            if roll < 0.15 and task.request.retries == 0:
                raise task.retry(exc=TimeoutError("render timed out"))

        @self.app.task(name="sync_campaign_stats")
        def sync_campaign_stats() -> None:
            time.sleep(random.uniform(0.005, 0.03))

        self.tasks = (generate_video, sync_campaign_stats)
        instrument_celery(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )

    def enqueue_burst(self) -> None:
        for _ in range(random.randint(1, 4)):
            random.choice(self.tasks).delay()

    def run(self) -> None:
        worker = self.app.Worker(
            pool="solo",
            concurrency=1,
            loglevel="WARNING",
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )
        worker.start()


class RedisTraffic:
    """Real commands with redis-py's OpenTelemetry metrics switched on."""

    def __init__(self, url: str) -> None:
        import redis
        from redis.observability.config import MetricGroup, OTelConfig
        from redis.observability.providers import get_observability_instance

        get_observability_instance().init(
            OTelConfig(metric_groups=[MetricGroup.CONNECTION_BASIC, MetricGroup.COMMAND])
        )
        self.client = redis.Redis.from_url(url)

    def run_one(self) -> None:
        key = f"campaign:{random.randint(1, 50)}"
        self.client.set(key, "1")
        self.client.get(key)


def business_activity(pack: AdPlatformKPIs, role: str) -> None:
    platform = random.choice(PLATFORMS)
    if role == "api":
        pack.campaign_created(platform=platform, tier=random.choice(("starter", "pro")))
        pack.ad_published(platform=platform, count=random.randint(1, 3))
        spend = random.uniform(10, 100)
        pack.campaign_result(
            f"cmp-{random.randint(1, 30)}",
            spend_usd=spend,
            revenue_usd=spend * random.uniform(0.5, 4.0),
            platform=platform,
            tier="pro",
        )
        actual = random.uniform(0.5, 4.0)
        pack.prediction(predicted=actual + random.gauss(0, 0.3), actual=actual, model="roas")
        pack.set_active_users(random.randint(900, 1100))
    else:
        status = "failed" if random.random() < 0.1 else "succeeded"
        pack.video_generated(status=status, duration_s=random.uniform(5, 90))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=("api", "worker"), required=True)
    parser.add_argument("--endpoint", required=True, help="OTLP/HTTP base URL of the Collector")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--export-interval", type=float, default=1.0)
    args = parser.parse_args()

    telemetry = Telemetry(args.endpoint, args.role, args.export_interval)
    start_system_metrics(telemetry)
    pack = AdPlatformKPIs(KPIRegistry(telemetry.meter_provider))
    llm = LlmCalls(telemetry)
    redis_traffic = RedisTraffic(args.redis_url)
    api = build_api(telemetry) if args.role == "api" else None
    celery = CeleryWorker(telemetry, args.redis_url) if args.role == "worker" else None

    def loop() -> None:
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            if api is not None:
                drive_api(api)
            if celery is not None:
                celery.enqueue_burst()
            llm.call()
            redis_traffic.run_one()
            business_activity(pack, args.role)
            time.sleep(0.1)

    if celery is None:
        loop()
    else:
        thread = threading.Thread(target=_loop_then_stop_worker, args=(loop,), daemon=True)
        thread.start()
        celery.run()
        thread.join()

    llm.stop()
    telemetry.shutdown()
    return 0


def _loop_then_stop_worker(loop: Any) -> None:
    try:
        loop()
    finally:
        os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    raise SystemExit(main())
