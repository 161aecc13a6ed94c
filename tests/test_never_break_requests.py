"""A dead Collector adds no latency to requests: the instrumented endpoint of the field case.

An instrumented FastAPI endpoint that makes one LLM call (to the local LLM server, through
the real ``openai`` client) takes 100 requests with the Collector down, in each way it can
be down, and with telemetry off. Export runs off the request path, so the slowest requests
are as fast as with telemetry off, give or take scheduling noise well under the bound.
"""

from __future__ import annotations

import json
import socket

import pytest

from otel_obs.demo.llm_server import LLMServer
from otel_obs.receiver import BlackholeServer

REQUESTS = 100
P99_OVERHEAD_BOUND_S = 0.050

SERVICE = """
import asyncio, gc, json, os, time
import otel_obs
otel_obs.configure()
import httpx, openai
from fastapi import FastAPI

app = FastAPI()
llm = openai.OpenAI(base_url=os.environ["LLM_URL"] + "/v1", api_key="test-key")

@app.get("/answer")
def answer():
    reply = llm.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "one short answer"}]
    )
    return {"text": reply.choices[0].message.content}

async def load():
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        for _ in range(10):  # warm-up, not measured
            await client.get("/answer")
        took, errors = [], 0
        for _ in range(REQUESTS):
            started = time.perf_counter()
            try:
                response = await client.get("/answer")
                errors += response.status_code != 200
            except Exception:
                errors += 1
            took.append(time.perf_counter() - started)
    return sorted(took), errors

took, errors = asyncio.run(load())
queues = [(len(p._queue), p._max_queue_size) for p in gc.get_objects()
          if type(p).__name__ == "BatchProcessor"]
print(json.dumps({"p99": took[int(len(took) * 0.99) - 1], "errors": errors, "queues": queues}))
""".replace("REQUESTS", str(REQUESTS))


def _closed_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _serve(run_python, llm: LLMServer, env: dict[str, str]) -> tuple[dict, str]:
    base = {
        "LLM_URL": llm.url,
        "OTEL_SERVICE_NAME": "answers",
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # export attempts run during the requests
        "OTEL_OBS_LOG_STDOUT": "false",
        "OTEL_OBS_SHUTDOWN_TIMEOUT": "1",
        "OTEL_OBS_RAISE_INTERNAL_ERRORS": "",
    }
    code, out, err, _ = run_python(SERVICE, env={**base, **env}, timeout=120)
    assert code == 0, err
    return json.loads(out.strip().splitlines()[-1]), err


@pytest.fixture(scope="module")
def llm():
    with_server = LLMServer().start()
    yield with_server
    with_server.stop()


@pytest.fixture(scope="module")
def disabled_p99(llm) -> float:
    from clean_env import run_code

    report, _ = _serve(run_code, llm, {"OTEL_SDK_DISABLED": "true"})
    return report["p99"]


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
@pytest.mark.parametrize("collector", ["closed port", "blackhole"])
def test_requests_do_not_wait_for_a_dead_collector(
    llm, disabled_p99: float, run_python, protocol: str, collector: str
) -> None:
    with BlackholeServer() as blackhole:
        endpoint = blackhole.endpoint if collector == "blackhole" else _closed_endpoint()
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol}
        report, err = _serve(run_python, llm, env)

    assert report["errors"] == 0
    assert "Traceback" not in err
    assert report["p99"] - disabled_p99 < P99_OVERHEAD_BOUND_S, (report["p99"], disabled_p99)
    assert report["queues"] and all(length <= size for length, size in report["queues"])
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) <= 10, lines  # rate-limited, not a line per batch or span
