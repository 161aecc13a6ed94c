"""A Collector killed mid-stream loses nothing it had accepted (persistent sending queues).

The shipped config sends traces over OTLP gRPC (Tempo) and logs over OTLP HTTP (Loki's
endpoint). Here a second otelcol-obs stands in for both backends: it is down while the
first one accepts data, is SIGKILLed and restarts, and comes up afterwards; every span and
record that got a 200 must then reach it.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml
from typing_extensions import Self

from otel_obs.stack import Ports, Stack, _free_port

from . import otlp

pytestmark = pytest.mark.real

BATCH = 20


def _sink_config(directory: Path, grpc_port: int, http_port: int) -> Path:
    config = {
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"127.0.0.1:{grpc_port}"},
                    "http": {"endpoint": f"127.0.0.1:{http_port}"},
                }
            }
        },
        "exporters": {
            "file/traces": {"path": str(directory / "traces.jsonl"), "flush_interval": "100ms"},
            "file/logs": {"path": str(directory / "logs.jsonl"), "flush_interval": "100ms"},
        },
        "service": {
            "pipelines": {
                "traces": {"receivers": ["otlp"], "exporters": ["file/traces"]},
                "logs": {"receivers": ["otlp"], "exporters": ["file/logs"]},
            },
            "telemetry": {"metrics": {"level": "none"}},
        },
    }
    path = directory / "sink.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _letters(number: int) -> str:
    """``number`` spelled with letters: ids made of digits could look like card numbers and
    be masked on the way."""
    return "".join("abcdefghij"[int(digit)] for digit in str(number))


class Sender:
    """Sends numbered batches of spans and log records until stopped; remembers what got a 200."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.accepted_spans: set[str] = set()
        self.accepted_logs: set[str] = set()
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        number = 0
        while not self._stop.is_set():
            ids = [f"{_letters(number)}-{_letters(i)}" for i in range(BATCH)]
            spans = otlp.spans_request([{"name": span_id} for span_id in ids])
            logs = otlp.logs_request(
                [{"body": f"order {i}", "attributes": {"seq": i}} for i in ids]
            )
            if otlp.post(self.url, "traces", spans, timeout=2) == 200:
                self.accepted_spans.update(ids)
            else:
                self.refused += 1
            if otlp.post(self.url, "logs", logs, timeout=2) == 200:
                self.accepted_logs.update(ids)
            else:
                self.refused += 1
            number += 1
            time.sleep(0.05)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def test_accepted_data_survives_sigkill_and_reaches_the_backend_later(otelcol, tmp_path):
    sink_dir = tmp_path / "sink"
    sink_dir.mkdir()
    grpc_port, http_port = _free_port(), _free_port()
    stack = Stack(
        tmp_path / "stack",
        Ports.free(),
        collector=otelcol,
        local_overlay=False,
        env={
            "OTEL_OBS_COLLECTOR_TEMPO_ENDPOINT": f"127.0.0.1:{grpc_port}",
            "OTEL_OBS_COLLECTOR_LOKI_ENDPOINT": f"http://127.0.0.1:{http_port}",
        },
    )
    stack.start("collector")
    sink = None
    try:
        with Sender(stack.urls["otlp_http"]) as sender:
            time.sleep(2)
            before_kill = len(sender.accepted_spans)
            stack.kill("collector")  # SIGKILL: no shutdown, no flush
            time.sleep(0.5)
            stack.start("collector")
            time.sleep(2)
        after_restart = len(sender.accepted_spans) - before_kill

        # The backends come up only now: everything accepted is still queued on disk.
        sink = subprocess.Popen(
            [str(otelcol), "--config", str(_sink_config(sink_dir, grpc_port, http_port))],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def received(kind: str) -> set[str]:
            if kind == "traces":
                return {span["name"] for span in otlp.file_spans(sink_dir / "traces.jsonl")}
            return {
                str(r["attributes"].get("seq")) for r in otlp.file_logs(sink_dir / "logs.jsonl")
            }

        delivered = otlp.wait_until(
            lambda: (
                sender.accepted_spans <= received("traces")
                and sender.accepted_logs <= received("logs")
            ),
            timeout=90,
            interval=1.0,
        )

        assert before_kill > 0 and after_restart > 0 and sender.refused > 0
        assert delivered, (
            f"missing spans: {len(sender.accepted_spans - received('traces'))}, "
            f"missing logs: {len(sender.accepted_logs - received('logs'))}"
        )
    finally:
        stack.down()
        if sink is not None:
            sink.terminate()
            sink.wait(timeout=10)
