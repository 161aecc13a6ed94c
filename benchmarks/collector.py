"""How much otelcol-obs holds on this machine without dropping, and its memory at that rate.

Two paths, each under a stepped load on loopback (every step bounded in time, the steps
stop at the first one that does not hold):

- spans: OTLP/HTTP in, masking (transform/redact), persistent queue, OTLP gRPC out to a
  second otelcol-obs standing in for Tempo. Run twice, side by side: the shipped config,
  and the same config without the masking processor (the baseline), to show its cost.
- data points: OTLP/HTTP in, prometheus exporter, scraped by Prometheus every second.

A step is lossless when every request was accepted (no refusal by the memory limiter or a
full queue) and the Collector sent on everything it accepted within a few seconds after
the step; it holds when, in addition, the load reached 95 % of the target rate. The
figure reported is the highest rate reached without loss (past it the Collector answers
more slowly, which slows the senders, before it refuses anything). The Collector's RSS is
sampled during each step; the load generator shares the machine's cores with it.
Run: ``python benchmarks/collector.py [--step-seconds 4]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_CUMULATIVE,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)

from otel_obs.stack import COLLECTOR_DIR, Ports, Stack, _free_port, collector_binary
from tests.stack import otlp

SPANS_PER_REQUEST = 500
POINTS_PER_REQUEST = 1000
SPAN_STEPS = (5_000, 10_000, 20_000, 40_000, 80_000, 160_000)
POINT_STEPS = (20_000, 50_000, 100_000, 200_000, 400_000)


# --- load ---------------------------------------------------------------------------------


def _span_payloads(count: int) -> list[bytes]:
    """Realistic spans: HTTP server spans with a handful of attributes, some with PII."""
    payloads = []
    for n in range(count):
        spans = [
            {
                "name": "GET /api/v1/ads/{ad_id}",
                "attributes": {
                    "http.request.method": "GET",
                    "http.route": "/api/v1/ads/{ad_id}",
                    "http.response.status_code": 200,
                    "url.path": f"/api/v1/ads/{n * SPANS_PER_REQUEST + i}",
                    "enduser.id": f"user-{i % 97}",
                    "note": "contact dana.whitfield@example.co.uk" if i % 10 == 0 else "ok",
                },
            }
            for i in range(SPANS_PER_REQUEST)
        ]
        payloads.append(otlp.spans_request(spans, service="bench"))
    return payloads


def _points_payload() -> bytes:
    now = time.time_ns()
    points = [
        NumberDataPoint(
            attributes=[
                KeyValue(key="route", value=AnyValue(string_value=f"/r{i % 50}")),
                KeyValue(key="status", value=AnyValue(string_value=str(200 + i // 50))),
            ],
            start_time_unix_nano=now - 60 * 10**9,
            time_unix_nano=now,
            as_double=float(i),
        )
        for i in range(POINTS_PER_REQUEST)
    ]
    metric = Metric(
        name="bench.requests",
        unit="{request}",
        sum=Sum(
            data_points=points,
            aggregation_temporality=AGGREGATION_TEMPORALITY_CUMULATIVE,
            is_monotonic=True,
        ),
    )
    request = ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                resource=otlp._resource("bench"),
                scope_metrics=[ScopeMetrics(metrics=[metric])],
            )
        ]
    )
    return request.SerializeToString()


class Load:
    """Posts payloads at ``requests_per_second`` for ``seconds`` from two keep-alive connections."""

    def __init__(
        self,
        port: int,
        path: str,
        payloads: list[bytes],
        requests_per_second: float,
        seconds: float,
    ):
        self.port, self.path, self.payloads = port, path, payloads
        self.interval = 2.0 / requests_per_second  # two senders
        self.seconds = seconds
        self.ok = 0
        self.failed = 0
        self._lock = threading.Lock()

    def _sender(self, offset: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        start = time.monotonic()
        next_at = start + offset * self.interval / 2
        n = offset
        while True:
            now = time.monotonic()
            if now - start >= self.seconds:
                break
            if now < next_at:
                time.sleep(next_at - now)
            next_at += self.interval
            body = self.payloads[n % len(self.payloads)]
            n += 2
            try:
                connection.request(
                    "POST", self.path, body, {"Content-Type": "application/x-protobuf"}
                )
                response = connection.getresponse()
                response.read()
                good = response.status == 200
            except (OSError, http.client.HTTPException):
                good = False
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            with self._lock:
                if good:
                    self.ok += 1
                else:
                    self.failed += 1
        connection.close()

    def run(self) -> float:
        threads = [threading.Thread(target=self._sender, args=(i,)) for i in range(2)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.monotonic() - started


# --- measurement --------------------------------------------------------------------------


def _self_metrics(url: str) -> dict[str, float]:
    """Sum the Collector's own counters by name (labels folded)."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    totals: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(r"^(otelcol_[a-z_]+)(?:\{[^}]*\})? ([0-9.e+-]+)$", line)
        if match:
            totals[match.group(1)] = totals.get(match.group(1), 0.0) + float(match.group(2))
    return totals


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self._done = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, _rss_mib(self.pid))
            time.sleep(0.2)

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak


def _step(
    stack: Stack,
    signal: str,
    payloads: list[bytes],
    items_per_request: int,
    rate: int,
    seconds: float,
) -> dict:
    telemetry = stack.urls["collector_telemetry"]
    accepted_name = f"otelcol_receiver_accepted_{signal}"
    refused_name = f"otelcol_receiver_refused_{signal}"
    sent_name = f"otelcol_exporter_sent_{signal}"
    before = _self_metrics(telemetry)
    sampler = RssSampler(stack._running_pid("collector"))
    sampler.start()
    load = Load(
        stack.ports.otlp_http,
        f"/v1/{'traces' if signal == 'spans' else 'metrics'}",
        payloads,
        rate / items_per_request,
        seconds,
    )
    elapsed = load.run()

    # Let the queue drain, bounded: whatever is not sent within 5 s counts as not held.
    deadline = time.monotonic() + 5
    while True:
        after = _self_metrics(telemetry)
        accepted = after.get(accepted_name, 0) - before.get(accepted_name, 0)
        sent = after.get(sent_name, 0) - before.get(sent_name, 0)
        if sent >= accepted or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    peak_rss = sampler.stop()
    offered = (load.ok + load.failed) * items_per_request
    refused = after.get(refused_name, 0) - before.get(refused_name, 0)
    achieved = load.ok * items_per_request / elapsed
    lossless = load.failed == 0 and refused == 0 and sent >= accepted == offered
    return {
        "target_per_s": rate,
        "achieved_per_s": round(achieved),
        "offered": int(offered),
        "accepted": int(accepted),
        "sent": int(sent),
        "refused_requests": load.failed,
        "peak_rss_mib": round(peak_rss, 1),
        "lossless": lossless,
        "held": lossless and achieved >= 0.95 * rate,
    }


def _ramp(
    stack: Stack, signal: str, payloads: list[bytes], items_per_request: int, steps, seconds: float
) -> list[dict]:
    results = []
    for rate in steps:
        result = _step(stack, signal, payloads, items_per_request, rate, seconds)
        print(f"  {signal:<7} {json.dumps(result)}", flush=True)
        results.append(result)
        if not result["held"]:  # saturated or lossy: higher steps say nothing more
            break
    return results


def _best(results: list[dict]) -> dict | None:
    """The step with the highest rate that lost nothing: at saturation the Collector slows
    its callers down (back-pressure) rather than dropping, so that rate is its capacity."""
    lossless = [r for r in results if r["lossless"]]
    return max(lossless, key=lambda r: r["achieved_per_s"]) if lossless else None


# --- stacks -------------------------------------------------------------------------------


def _sink(binary: Path, directory: Path, grpc_port: int) -> subprocess.Popen:
    """A second otelcol-obs that accepts spans and discards them: the stand-in for Tempo."""
    config = {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{grpc_port}"}}}},
        "exporters": {
            "debug": {"verbosity": "basic", "sampling_initial": 1, "sampling_thereafter": 1000}
        },
        "service": {
            "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["debug"]}},
            "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "warn"}},
        },
    }
    path = directory / "sink.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.Popen(
        [str(binary), "--config", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _config_without_masking(directory: Path) -> Path:
    config = yaml.safe_load((COLLECTOR_DIR / "otelcol-obs.yaml").read_text())
    for pipeline in config["service"]["pipelines"].values():
        pipeline["processors"] = [
            p for p in pipeline["processors"] if not p.startswith("transform")
        ]
    del config["processors"]["transform/redact"]
    config_dir = directory / "baseline"
    config_dir.mkdir()
    # yaml.safe_dump would turn "$${1}" escapes into literal text it does not use; only the
    # masking statements contain them, and they are gone here.
    (config_dir / "otelcol-obs.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (config_dir / "prometheus").symlink_to(COLLECTOR_DIR / "prometheus")
    (config_dir / "overlays").symlink_to(COLLECTOR_DIR / "overlays")
    return config_dir


def _span_run(
    binary: Path, root: Path, config_dir: Path, payloads: list[bytes], seconds: float
) -> list[dict]:
    grpc_port = _free_port()
    sink = _sink(binary, root, grpc_port)
    stack = Stack(
        root / f"stack-{config_dir.name}",
        Ports.free(),
        collector=binary,
        config_dir=config_dir,
        local_overlay=False,
        env={"OTEL_OBS_COLLECTOR_TEMPO_ENDPOINT": f"127.0.0.1:{grpc_port}"},
    )
    try:
        stack.start("collector")
        return _ramp(stack, "spans", payloads, SPANS_PER_REQUEST, SPAN_STEPS, seconds)
    finally:
        stack.down()
        sink.terminate()
        sink.wait(timeout=10)


def _points_run(binary: Path, root: Path, seconds: float) -> tuple[list[dict], dict]:
    stack = Stack(root / "stack-metrics", Ports.free(), collector=binary, scrape_interval="1s")
    payload = _points_payload()
    try:
        stack.up()
        results = _ramp(stack, "metric_points", [payload], POINTS_PER_REQUEST, POINT_STEPS, seconds)
        time.sleep(3)
        query = "scrape_samples_scraped{job='otelcol'}"
        with urllib.request.urlopen(
            f"{stack.urls['prometheus']}/api/v1/query?query={urllib.parse.quote(query)}", timeout=5
        ) as response:
            scraped = json.load(response)["data"]["result"]
        samples = float(scraped[0]["value"][1]) if scraped else 0.0
        return results, {"scraped_samples_per_scrape": samples, "series_sent": POINTS_PER_REQUEST}
    finally:
        stack.down()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step-seconds", type=float, default=4.0)
    args = parser.parse_args(argv)
    binary = collector_binary()
    if binary is None:
        print("otelcol-obs is not built: run collector/build.sh", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="otelcol-bench-") as tmp:
        root = Path(tmp)
        payloads = _span_payloads(8)
        print("spans, shipped config (masking on):", flush=True)
        shipped = _span_run(binary, root, COLLECTOR_DIR, payloads, args.step_seconds)
        print("spans, baseline (same config without masking):", flush=True)
        baseline = _span_run(
            binary, root, _config_without_masking(root), payloads, args.step_seconds
        )
        print("data points to Prometheus:", flush=True)
        points, scrape = _points_run(binary, root, args.step_seconds)

    best_shipped, best_baseline, best_points = _best(shipped), _best(baseline), _best(points)
    summary = {
        "cores": os.cpu_count(),
        "spans_per_s_without_loss": best_shipped and best_shipped["achieved_per_s"],
        "spans_rss_mib_at_that_rate": best_shipped and best_shipped["peak_rss_mib"],
        "spans_per_s_without_loss_no_masking": best_baseline and best_baseline["achieved_per_s"],
        "masking_throughput_ratio": (
            round(best_shipped["achieved_per_s"] / best_baseline["achieved_per_s"], 2)
            if best_shipped and best_baseline
            else None
        ),
        "points_per_s_without_loss": best_points and best_points["achieved_per_s"],
        "points_rss_mib_at_that_rate": best_points and best_points["peak_rss_mib"],
        **scrape,
        "steps": {"spans": shipped, "spans_without_masking": baseline, "points": points},
    }
    results_dir = Path(__file__).resolve().parent / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / "collector.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "steps"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
