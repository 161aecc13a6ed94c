"""The sample service's Celery app: ad video generation, which asks two LLMs for a script.

Broker from ``ADPLATFORM_BROKER_URL`` (Redis, or kombu's ``filesystem://`` transport, whose
folders come from ``ADPLATFORM_BROKER_OPTIONS`` as JSON). Results are not stored: the API
answers 202 and the outcome shows in the telemetry and the KPIs.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import worker_ready

import otel_obs
from otel_obs.business import adplatform
from otel_obs.demo import copywriter

log = logging.getLogger("adplatform.worker")

QUEUE = "adplatform"
RENDER_SECONDS = (0.15, 0.45)


class RenderFarmBusy(Exception):
    """The renderer had no free slot; worth retrying shortly."""


class RenderFailed(Exception):
    """The renderer rejected the job; retrying will not help."""


def _create_app() -> Celery:
    app = Celery(
        "adplatform", broker=os.environ.get("ADPLATFORM_BROKER_URL", "redis://127.0.0.1:6379/0")
    )
    app.conf.update(
        broker_transport_options=json.loads(os.environ.get("ADPLATFORM_BROKER_OPTIONS") or "{}"),
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        # Keep the log handlers that otel-obs installed (JSON on stdout and OTLP).
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    return app


app = _create_app()
otel_obs.instrument_celery(app)


def _render_seconds(campaign_id: str) -> float:
    low, high = RENDER_SECONDS
    return low + (high - low) * (sum(campaign_id.encode()) % 10) / 10


@app.task(name="adplatform.generate_video", bind=True, max_retries=3)
def generate_video(
    self: Any,
    campaign: dict[str, Any],
    requested_at: float,
    simulate: str | None = None,
) -> dict[str, str]:
    attempt = self.request.retries + 1
    log.info("generating video for campaign %s (attempt %d)", campaign["id"], attempt)
    scenes = copywriter.write_video_script(campaign, attempt)
    time.sleep(_render_seconds(campaign["id"]))

    if simulate == "render_busy" and attempt == 1:
        log.warning("render farm busy for campaign %s; retrying", campaign["id"])
        raise self.retry(exc=RenderFarmBusy("no free render slot"), countdown=0.3)
    if simulate == "render_error":
        adplatform.video_generated(status="failed", duration_s=time.time() - requested_at)
        log.error(
            "video for campaign %s failed; owner %s notified",
            campaign["id"],
            campaign["owner_email"],
        )
        raise RenderFailed(f"renderer rejected campaign {campaign['id']}")

    adplatform.video_generated(status="succeeded", duration_s=time.time() - requested_at)
    log.info(
        "video for campaign %s ready; link sent to %s and by SMS to %s",
        campaign["id"],
        campaign["owner_email"],
        campaign["owner_phone"],
    )
    return {"campaign_id": campaign["id"], "shots": scenes["shots"]}


@worker_ready.connect
def _announce_ready(**_: Any) -> None:
    # A file that says the worker consumes, for whatever starts it (a readiness probe, the demo).
    path = os.environ.get("ADPLATFORM_WORKER_READY_FILE")
    if path:
        Path(path).touch()
