"""The sample service: a small ad-platform API.

Run it the zero-code way, ``otel-obs run -- uvicorn otel_obs.demo.app:app``; nothing here
sets telemetry up. Routes: campaigns (create, get, list), ad copy written by an LLM through
the OpenAI, Anthropic or Google client, ads published by platform, ROAS predictions, video
generations handed to Celery, and a daily report with a bug in its date handling.

Campaign owners' emails, phone numbers and the billing card are logged on purpose, as
services sometimes do by mistake: otel-obs masks them before any log line leaves.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from datetime import date
from typing import Any, Literal

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

import otel_obs
from otel_obs.business import PLATFORMS, TIERS, adplatform
from otel_obs.demo import roas
from otel_obs.demo.copywriter import SIMULATIONS, Copywriter
from otel_obs.web import current_request_id, health_router

log = logging.getLogger("adplatform.api")

Platform = Literal[PLATFORMS]  # type: ignore[valid-type]
Tier = Literal[TIERS]  # type: ignore[valid-type]
ACTIVE_USER_WINDOW_S = 60.0


class CampaignIn(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    platform: Platform
    tier: Tier = "starter"
    daily_budget: float = Field(gt=0, le=100_000)
    owner_email: str
    owner_phone: str


class AdCopyIn(BaseModel):
    provider: Literal["openai", "anthropic", "gemini"]
    api: Literal["chat", "responses"] = "chat"
    stream: bool = False
    simulate: Literal[tuple(SIMULATIONS)] | None = None  # type: ignore[valid-type]


class PublishIn(BaseModel):
    platforms: list[Platform] = Field(min_length=1)  # type: ignore[valid-type]
    ads_per_platform: int = Field(default=1, ge=1, le=20)
    billing_card: str


class VideoIn(BaseModel):
    simulate: Literal["render_busy", "render_error"] | None = None


class CampaignStore:
    """Campaigns in memory, and who used the platform lately (for the active-users KPI)."""

    def __init__(self) -> None:
        self._campaigns: dict[str, dict[str, Any]] = {}
        self._last_seen: dict[str, float] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, campaign: CampaignIn) -> dict[str, Any]:
        with self._lock:
            record = {"id": f"cmp-{next(self._ids):05d}", **campaign.model_dump()}
            self._campaigns[record["id"]] = record
            return record

    def get(self, campaign_id: str) -> dict[str, Any]:
        with self._lock:
            record = self._campaigns.get(campaign_id)
        if record is None:
            raise HTTPException(status_code=404, detail="campaign not found")
        return record

    def list(self, platform: str | None, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            records = list(self._campaigns.values())
        return [r for r in records if platform in (None, r["platform"])][-limit:]

    def seen(self, owner: str) -> int:
        """Note that ``owner`` was active now; return the users active in the window."""
        now = time.monotonic()
        with self._lock:
            self._last_seen[owner] = now
            return sum(1 for t in self._last_seen.values() if now - t <= ACTIVE_USER_WINDOW_S)


store = CampaignStore()
copywriter = Copywriter()
app = FastAPI(title="adplatform", version="1.0")
app.include_router(health_router())
# Zero-code start already instruments the app; the explicit call is safe and keeps the
# service instrumented when it is started without `otel-obs run` too.
otel_obs.instrument_fastapi(app)


def _public(campaign: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in campaign.items() if not k.startswith("owner_")}


@app.post("/campaigns", status_code=201)
async def create_campaign(body: CampaignIn) -> dict[str, Any]:
    campaign = store.add(body)
    adplatform.campaign_created(platform=body.platform, tier=body.tier)
    adplatform.set_active_users(store.seen(body.owner_email))
    log.info(
        "campaign %s created for %s (phone %s)", campaign["id"], body.owner_email, body.owner_phone
    )
    return _public(campaign)


@app.get("/campaigns")
async def list_campaigns(
    platform: Platform | None = None,  # type: ignore[valid-type]
    limit: int = 20,
) -> dict[str, Any]:
    campaigns = store.list(platform, max(1, min(limit, 100)))
    return {"campaigns": [_public(c) for c in campaigns], "count": len(campaigns)}


@app.get("/campaigns/{campaign_id}")
async def get_campaign(campaign_id: str) -> dict[str, Any]:
    return _public(store.get(campaign_id))


@app.post("/campaigns/{campaign_id}/ad-copy")
async def write_ad_copy(campaign_id: str, body: AdCopyIn) -> dict[str, Any]:
    campaign = store.get(campaign_id)
    try:
        copy = await copywriter.write(
            campaign, body.provider, api=body.api, stream=body.stream, simulate=body.simulate
        )
    except Exception as error:
        status = _upstream_status(error)
        if status is None:
            raise
        log.warning("ad copy for %s failed: %s answered %d", campaign_id, body.provider, status)
        raise HTTPException(
            status_code=503 if status == 429 else 502, detail=f"{body.provider} answered {status}"
        ) from error
    return {
        "campaign_id": campaign_id,
        "provider": copy.provider,
        "model": copy.model,
        "text": copy.text,
    }


@app.post("/campaigns/{campaign_id}/ads")
async def publish_ads(campaign_id: str, body: PublishIn) -> dict[str, Any]:
    campaign = store.get(campaign_id)
    for platform in body.platforms:
        adplatform.ad_published(platform=platform, count=body.ads_per_platform)
    total = len(body.platforms) * body.ads_per_platform
    log.info("charged card %s for %d ads of campaign %s", body.billing_card, total, campaign["id"])
    return {"campaign_id": campaign_id, "published": total, "platforms": body.platforms}


@app.post("/campaigns/{campaign_id}/roas-prediction")
async def predict_roas(campaign_id: str) -> dict[str, Any]:
    c = store.get(campaign_id)
    # The model is plain CPU work; it runs in the thread pool so the event loop stays free.
    result = await run_in_threadpool(
        roas.evaluate, c["id"], c["platform"], c["tier"], c["daily_budget"]
    )
    adplatform.prediction(
        predicted=result.predicted_roas, actual=result.observed_roas, model=roas.MODEL_NAME
    )
    adplatform.campaign_result(
        c["id"],
        spend_usd=result.spend_usd,
        revenue_usd=result.revenue_usd,
        platform=c["platform"],
        tier=c["tier"],
    )
    return {
        "campaign_id": c["id"],
        "predicted_roas": result.predicted_roas,
        "observed_roas": result.observed_roas,
        "model": roas.MODEL_NAME,
    }


@app.post("/campaigns/{campaign_id}/videos", status_code=202)
async def request_video(campaign_id: str, body: VideoIn) -> dict[str, Any]:
    from otel_obs.demo.tasks import generate_video

    campaign = store.get(campaign_id)
    adplatform.set_active_users(store.seen(campaign["owner_email"]))
    log.info("video for campaign %s requested by %s", campaign_id, campaign["owner_email"])
    task = generate_video.delay(campaign, time.time(), body.simulate)
    return {"campaign_id": campaign_id, "task_id": task.id, "request_id": current_request_id()}


@app.get("/reports/daily")
async def daily_report(day: str) -> dict[str, Any]:
    # The bug on purpose: an impossible date (2024-02-30) raises instead of answering 422.
    when = date.fromisoformat(day)
    campaigns = store.list(None, 100)
    budget = sum(c["daily_budget"] for c in campaigns)
    return {"day": when.isoformat(), "campaigns": len(campaigns), "budget_usd": round(budget, 2)}


def _upstream_status(error: Exception) -> int | None:
    """The HTTP status an LLM provider answered with, for the errors of all three clients."""
    for attribute in ("status_code", "code"):
        value = getattr(error, attribute, None)
        if isinstance(value, int) and 400 <= value < 600:
            return value
    return None
