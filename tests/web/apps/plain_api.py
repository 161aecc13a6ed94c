"""An API with no telemetry code at all, for the zero-code start (``otel-obs run``)."""

from __future__ import annotations

import os

from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
async def health() -> dict:
    return {"status": "ok"}


@app.get("/campaigns/{campaign_id}")
async def campaign(campaign_id: int) -> dict:
    return {"campaign_id": campaign_id, "pid": os.getpid()}
