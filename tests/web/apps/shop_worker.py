"""The shop worker: the shared tasks plus tasks only the worker knows (sent by name)."""

from __future__ import annotations

from shop_celery import celery, tracer

__all__ = ["celery"]


@celery.task(name="billing.charge")
def billing_charge(order_id: str) -> None:
    with tracer.start_as_current_span("billing.work") as span:
        span.set_attribute("shop.order_id", order_id)
