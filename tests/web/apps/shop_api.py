"""The shop API: enqueues Celery tasks from HTTP requests."""

from __future__ import annotations

import os

from fastapi import FastAPI
from opentelemetry import trace
from shop_celery import celery, charge

import otel_obs
from otel_obs.web import current_request_id, health_router

app = FastAPI()
app.include_router(health_router())
otel_obs.instrument_fastapi(app)
tracer = trace.get_tracer("shop")


@app.post("/checkout")
async def checkout() -> dict:
    with tracer.start_as_current_span("checkout"):
        first = charge.apply_async(kwargs={"order_id": "ord-0001"})
        second = celery.send_task("billing.charge", kwargs={"order_id": "ord-0001"})
    return {"request_id": current_request_id(), "charge": first.id, "billing": second.id}


@app.post("/enqueue/{task_name}")
async def enqueue(
    task_name: str, count: int = 1, queue: str | None = None, countdown: float | None = None
) -> dict:
    ids = [celery.send_task(task_name, queue=queue, countdown=countdown).id for _ in range(count)]
    return {"ids": ids}


@app.post("/flaky/{failures}")
async def enqueue_flaky(failures: int) -> dict:
    return {"id": celery.send_task("shop.flaky", args=[failures]).id}


@app.get("/campaigns/{campaign_id}")
async def campaign(campaign_id: int) -> dict:
    return {"campaign_id": campaign_id, "pid": os.getpid()}
