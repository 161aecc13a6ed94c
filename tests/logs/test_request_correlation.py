"""A real uvicorn server: records of a request carry its trace id on stdout and over OTLP.

Field case B14: the route's line, the exception handler's line and uvicorn's access-log
line all carry the trace id of the request's SERVER span, in the JSON on stdout and in
the OTLP records received by a real OTLP/HTTP receiver; startup lines carry none. Each
uvicorn record is written once and exported once, under a zero-code start and under an
explicit ``configure()``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest
from clean_env import clean_environment

from otel_obs.receiver import OTLPReceiver

pytestmark = pytest.mark.real

APP = textwrap.dedent(
    """
    import logging
    {setup}
    from opentelemetry import trace
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI()
    log = logging.getLogger("shop.api")


    class OutOfStock(Exception):
        pass


    @app.exception_handler(OutOfStock)
    async def out_of_stock(request, exc):
        log.error("handled failure")
        return JSONResponse({{"error": "out of stock"}}, status_code=503)


    @app.get("/ok")
    async def ok():
        log.info("processing for %s", "dana.whitfield+billing@example.co.uk")
        span = trace.get_current_span()
        span.set_attribute("app.customer", "dana.whitfield+billing@example.co.uk")
        span.add_event("charged", {{"card": "4111 1111 1111 1111"}})
        return {{"ok": True}}


    @app.get("/fail")
    async def fail():
        raise OutOfStock()


    @app.get("/boom")
    async def boom():
        raise RuntimeError("fixture failure")
    {instrument}
    """
)

EXPLICIT_SETUP = (
    "import otel_obs\notel_obs.configure()\nfrom otel_obs.web import instrument_fastapi"
)
EXPLICIT_INSTRUMENT = "instrument_fastapi(app)"
SERVER_KIND = 2


class _Server:
    """A uvicorn process on a free port whose stdout lines are collected as they come."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path):
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = self._wait_for_port()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def _wait_for_port(self) -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for record in self.records():
                message = record.get("message", "")
                if message.startswith("Uvicorn running on http://127.0.0.1:"):
                    return int(message.split(":")[2].split()[0])
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"uvicorn did not start: {self.process.stderr.read()}")

    def records(self) -> list[dict]:
        out = []
        for line in list(self.lines):
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"_plain": line})
        return out

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            _, err = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        self._reader.join(5)
        return err


@pytest.fixture(scope="module", params=["zero-code", "explicit-configure"])
def server_run(request, tmp_path_factory):
    """One server run per start mode, shared by the tests of this module."""
    with OTLPReceiver() as otlp_receiver:
        yield _run_server(
            request.param == "explicit-configure", tmp_path_factory.mktemp("app"), otlp_receiver
        )


def _run_server(explicit: bool, tmp_path: Path, otlp_receiver: OTLPReceiver):
    (tmp_path / "shop.py").write_text(
        APP.format(
            setup=EXPLICIT_SETUP if explicit else "",
            instrument=EXPLICIT_INSTRUMENT if explicit else "",
        )
    )
    env = clean_environment(
        {
            "OTEL_SERVICE_NAME": "shop",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_BLRP_SCHEDULE_DELAY": "100",
            "OTEL_METRIC_EXPORT_INTERVAL": "60000",
            "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        }
    )
    uvicorn = [sys.executable, "-m", "uvicorn", "shop:app", "--host", "127.0.0.1", "--port", "0"]
    if not explicit:
        uvicorn = [str(Path(sys.executable).with_name("otel-obs")), "run", "--", *uvicorn]
    server = _Server(uvicorn, env, tmp_path)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as client:
            assert client.get("/ok").status_code == 200
            assert client.get("/fail").status_code == 503
            assert client.get("/boom").status_code == 500
        assert otlp_receiver.wait_for(lambda r: len(_server_spans(r)) >= 3, timeout=15)
        assert otlp_receiver.wait_for(lambda r: _access_records(r.logs(), "/fail"), timeout=15)
    finally:
        err = server.stop()
    return server.records(), err, otlp_receiver


def _server_spans(receiver) -> dict[str, str]:
    return {
        span.attributes.get("http.route"): span.trace_id
        for span in receiver.spans()
        if span.kind == SERVER_KIND and span.attributes.get("http.route")
    }


def _access_records(records, path):
    return [
        r
        for r in records
        if f'"GET {path} HTTP/1.1"' in str(getattr(r, "body", None) or r.get("message", ""))
    ]


def _stdout(records, message):
    return [r for r in records if r.get("message") == message]


def test_route_handler_and_access_lines_carry_the_request_trace_id_on_stdout(server_run):
    records, _, receiver = server_run
    trace_ids = _server_spans(receiver)
    ok, fail = trace_ids["/ok"], trace_ids["/fail"]

    assert [r["trace_id"] for r in _stdout(records, "processing for [REDACTED:email]")] == [ok]
    assert [r["trace_id"] for r in _stdout(records, "handled failure")] == [fail]
    assert [r["trace_id"] for r in _access_records(records, "/ok")] == [ok]
    assert [r["trace_id"] for r in _access_records(records, "/fail")] == [fail]
    assert all(len(r["request_id"]) >= 16 for r in _access_records(records, "/ok"))


def test_uvicorn_error_line_after_the_span_carries_the_request_trace_and_request_id(server_run):
    records, _, receiver = server_run
    (boom_span,) = [s for s in receiver.spans() if s.attributes.get("http.route") == "/boom"]
    (request_id,) = boom_span.attributes["http.request.header.x-request-id"]

    (line,) = _stdout(records, "Exception in ASGI application\n")
    assert line["logger"] == "uvicorn.error"
    assert line["trace_id"] == boom_span.trace_id
    assert line["request_id"] == request_id
    assert line["exception"]["type"] == "RuntimeError"
    (exported,) = [r for r in receiver.logs() if r.body == "Exception in ASGI application\n"]
    assert exported.trace_id == boom_span.trace_id
    assert exported.attributes["request_id"] == request_id


def test_the_same_lines_carry_the_trace_id_over_otlp(server_run):
    _, _, receiver = server_run
    trace_ids = _server_spans(receiver)
    exported = receiver.logs()

    def trace_of(body):
        return [r.trace_id for r in exported if r.body == body]

    assert trace_of("processing for [REDACTED:email]") == [trace_ids["/ok"]]
    assert trace_of("handled failure") == [trace_ids["/fail"]]
    assert [r.trace_id for r in _access_records(exported, "/ok")] == [trace_ids["/ok"]]
    assert [r.trace_id for r in _access_records(exported, "/fail")] == [trace_ids["/fail"]]
    assert all(r.resource.get("service.name") == "shop" for r in exported)


def test_startup_lines_have_no_trace_id_and_nothing_is_plain_text(server_run):
    records, err, receiver = server_run

    startup = _stdout(records, "Application startup complete.")
    assert len(startup) == 1 and "trace_id" not in startup[0]
    assert not [r for r in records if "_plain" in r]
    assert "Uvicorn running" not in err and "GET /ok" not in err
    exported_startup = [r for r in receiver.logs() if r.body == "Application startup complete."]
    assert len(exported_startup) == 1 and exported_startup[0].trace_id in ("", "0" * 32)


def test_personal_data_never_reaches_either_output(server_run):
    records, err, receiver = server_run

    assert "dana.whitfield" not in json.dumps(records) + err
    assert "dana.whitfield" not in repr(receiver.logs())
    (ok_span,) = [s for s in receiver.spans() if s.attributes.get("http.route") == "/ok"]
    assert ok_span.attributes["app.customer"] == "[REDACTED:email]"
    assert ok_span.events[0]["attributes"] == {"card": "[REDACTED:card]"}
