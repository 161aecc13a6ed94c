"""Pool children and the worker flush telemetry before they exit, so no task's spans are lost."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest
from celery import Celery
from web.realproc import (
    OTEL_OBS_RUN,
    Process,
    redis_server,
    start_celery_worker,
    telemetry_env,
    wait_until,
)

from otel_obs.receiver import OTLPReceiver

pytestmark = pytest.mark.real


def enqueue_work_units(broker: str, count: int) -> set[str]:
    producer = Celery("producer", broker=broker, set_as_current=False)
    return {producer.send_task("shop.work_unit", args=[n]).id for n in range(count)}


def succeeded(worker: Process) -> set[str]:
    return set(re.findall(r"shop\.work_unit\[([0-9a-f-]+)\] succeeded", worker.output()))


def work_spans(receiver: OTLPReceiver) -> tuple[dict[str, object], list[object]]:
    runs = {
        s.attributes["messaging.message.id"]: s
        for s in receiver.spans()
        if s.name == "run/shop.work_unit"
    }
    children = [s for s in receiver.spans() if s.name == "work_unit.child"]
    return runs, children


# The worker module also calls configure() and instrument_celery(): under otel-obs run,
# that is instrumenting twice, which must not double any span.
@pytest.mark.parametrize("launcher", [None, OTEL_OBS_RUN], ids=["configure", "otel-obs-run"])
def test_children_recycled_after_every_task_export_all_spans(tmp_path: Path, launcher):
    with OTLPReceiver() as receiver, redis_server(tmp_path) as broker:
        env = telemetry_env(receiver.endpoint, "shop-worker", SHOP_BROKER_URL=broker)
        del env["OTEL_BSP_SCHEDULE_DELAY"]  # the SDK default (5 s), longer than a child lives
        worker = start_celery_worker(
            "shop_worker", env, tmp_path, "--max-tasks-per-child", "1", launcher=launcher
        )
        try:
            task_ids = enqueue_work_units(broker, 10)
            wait_until(lambda: succeeded(worker) == task_ids, 30, "10 tasks", worker.log)

            assert receiver.wait_for(lambda r: len(work_spans(r)[1]) >= 10, timeout=10)
            time.sleep(0.5)  # room for any duplicate to arrive
            runs, children = work_spans(receiver)
            assert len([s for s in receiver.spans() if s.name == "run/shop.work_unit"]) == 10
            assert set(runs) == task_ids
            assert len(children) == 10
            assert {c.parent_span_id for c in children} == {r.span_id for r in runs.values()}
            assert len({r.resource["service.instance.id"] for r in runs.values()}) >= 5
            assert not [p for p in receiver.points("otel_obs.export.dropped") if p.value]
        finally:
            worker.stop()


def test_warm_shutdown_exports_what_the_batch_processors_still_hold(tmp_path: Path):
    with OTLPReceiver() as receiver, redis_server(tmp_path) as broker:
        env = telemetry_env(
            receiver.endpoint,
            "shop-worker",
            SHOP_BROKER_URL=broker,
            OTEL_BSP_SCHEDULE_DELAY="60000",
        )
        worker = start_celery_worker("shop_worker", env, tmp_path)
        try:
            task_ids = enqueue_work_units(broker, 4)
            wait_until(lambda: succeeded(worker) == task_ids, 30, "4 tasks", worker.log)
            assert work_spans(receiver) == ({}, [])  # held by the batch processors

            exit_code = worker.stop(signal.SIGTERM, timeout=15)

            assert exit_code == 0
            runs, children = work_spans(receiver)
            assert set(runs) == task_ids
            assert len(children) == 4
        finally:
            worker.stop()
