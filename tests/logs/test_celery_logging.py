"""Celery's logging set-up keeps our handlers: worker and task records are written once."""

from __future__ import annotations

import json
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import logging, sys, types
    {early}
    from otel_obs import logs
    from otel_obs.redact import Redactor

    settings = types.SimpleNamespace(
        service_name="worker", log_format="json", log_level="INFO", log_stdout=True
    )
    logs.install(settings, None, Redactor())
    print("celery imported before install:", "celery" in sys.modules, file=sys.stderr)

    from celery import Celery
    from celery.utils.log import get_task_logger

    app = Celery("shop", broker="memory://")
    app.log.setup(loglevel="INFO", redirect_stdouts=False)  # what a worker does at start
    get_task_logger("shop.tasks").info("charged %s", "dana@example.co.uk")
    logging.getLogger("celery.worker.consumer").info("Connected to memory://")
    logging.getLogger("shop.app").warning("plain app record")
    """
)


@pytest.mark.parametrize(
    "celery_first", [False, True], ids=["celery-imported-later", "celery-imported-first"]
)
def test_celery_worker_and_task_records_are_written_once_as_json(run_python, celery_first):
    code, out, err, _ = run_python(SCRIPT.format(early="import celery" if celery_first else ""))

    assert code == 0, err
    assert f"celery imported before install: {celery_first}" in err
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["logger"], r["message"]) for r in records] == [
        ("shop.tasks", "charged [REDACTED:email]"),
        ("celery.worker.consumer", "Connected to memory://"),
        ("shop.app", "plain app record"),
    ]
    assert "charged" not in err and "Connected" not in err
