"""The shop's Celery app and the tasks both the API and the worker know."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue
from opentelemetry import baggage, trace

import otel_obs

# Everything (OTLP endpoint, service name, export intervals) comes from the environment the
# tests give the process, as it would in production.
otel_obs.configure()

celery = Celery("shop", broker=os.environ["SHOP_BROKER_URL"])
celery.conf.update(
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    task_queues=(Queue("celery"), Queue("backlog")),
)
otel_obs.instrument_celery(celery)

# A second app object on the same broker, as a client library for another service has.
notifier = Celery("notifier", broker=os.environ["SHOP_BROKER_URL"], set_as_current=False)

tracer = trace.get_tracer("shop")


@celery.task(name="shop.charge")
def charge(order_id: str) -> None:
    with tracer.start_as_current_span("charge.work") as span:
        span.set_attribute("shop.tenant", str(baggage.get_baggage("tenant")))
        notifier.send_task("shop.notify", kwargs={"order_id": order_id})


@celery.task(name="shop.notify")
def notify(order_id: str) -> None:
    with tracer.start_as_current_span("notify.work") as span:
        span.set_attribute("shop.order_id", order_id)


@celery.task(name="shop.work_unit")
def work_unit(number: int = 0) -> int:
    with tracer.start_as_current_span("work_unit.child") as span:
        span.set_attribute("shop.number", number)
    return number


@celery.task(name="shop.later")
def later() -> None:
    pass


@celery.task(name="shop.fail")
def fail() -> None:
    raise ValueError("fixture failure")


@celery.task(name="shop.flaky", bind=True, max_retries=3)
def flaky(self, failures: int) -> None:
    if self.request.retries < failures:
        raise self.retry(exc=TimeoutError("fixture timeout"), countdown=0)
