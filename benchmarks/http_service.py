"""What telemetry costs a FastAPI service: bare, with otel-obs, with plain OpenTelemetry.

One uvicorn worker per variant serves a reference endpoint that awaits 2 ms and returns a
1 KB JSON body; Debian's ``wrk`` loads each in turn, round after round in rotating order,
so that machine noise hits all variants alike. CPU per request is the server's CPU time
(``/proc/<pid>/stat``, the whole process group) over the requests wrk completed.

- bare: no telemetry;
- otel-obs: ``otel-obs run -- uvicorn ...``; where the ``run`` command is not available,
  opentelemetry-distro's set-up plus otel-obs's FastAPI and Celery defaults, merged the way
  the otel-obs distro merges them (reported as "otel-obs (web only)");
- plain: ``opentelemetry-instrument uvicorn ...`` with opentelemetry-distro (installed on
  first run into the benchmark cache, outside the project's environment, so that its
  distro never competes with ours there).

Both telemetry variants export OTLP/HTTP to a local sink that accepts and drops data.
Goals: added CPU per request of otel-obs over plain OpenTelemetry <= 1.03, and otel-obs
keeps >= 0.90 of bare throughput.

A second, in-process part calls the same app through ASGI with no server and no network,
and compares otel-obs with the official instrumentation given the same options: the
difference is the work otel-obs itself adds per request (request id, response tap,
corrected duration and size), apart from what the official instrumentation costs.
Run: ``python benchmarks/http_service.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's directory comes first on sys.path, where this file would
# shadow the standard library's ``http`` package.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import argparse
import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

WRK = "/usr/bin/wrk"
PATH = "/campaigns/42"
BIN = Path(sys.executable).parent
RESULTS = Path(__file__).resolve().parent / "results"
GOAL_CPU_RATIO = 1.03
GOAL_THROUGHPUT_RATIO = 0.90

APP_SOURCE = """
import asyncio

from fastapi import FastAPI

# About 1 KB once serialised: a campaign with its ad groups.
CAMPAIGN = {
    "name": "spring-sale",
    "status": "active",
    "budget_usd": 1500.0,
    "ad_groups": [
        {"id": n, "name": f"group-{n}", "bid_usd": 0.42, "keywords": ["shoes", "running", "sale"]}
        for n in range(9)
    ],
}


def create_app(wait: float = 0.002) -> FastAPI:
    app = FastAPI()

    @app.get("/campaigns/{campaign_id}")
    async def campaign(campaign_id: int) -> dict:
        if wait:
            await asyncio.sleep(wait)
        return {"id": campaign_id, **CAMPAIGN}

    return app


app = create_app()
"""


class _Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received: ClassVar[dict[int, int]] = {}

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        port = self.server.server_address[1]
        _Sink.received[port] = _Sink.received.get(port, 0) + length
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def sink() -> Iterator[ThreadingHTTPServer]:
    """An OTLP/HTTP endpoint on 127.0.0.1 that accepts everything and keeps nothing."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Variant:
    name: str
    argv_prefix: list[str]
    env: dict[str, str]
    sink: ThreadingHTTPServer | None = None
    process: subprocess.Popen | None = None
    port: int = 0
    rounds: list[dict] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def plain_distro_dir(cache: Path) -> Path:
    """opentelemetry-distro matching the installed instrumentations, in a directory of its own."""
    from opentelemetry.instrumentation.version import __version__

    target = cache / f"opentelemetry-distro-{__version__}"
    if not (target / "opentelemetry" / "distro").is_dir():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--target",
                str(target),
                f"opentelemetry-distro=={__version__}",
            ],
            check=True,
        )
    return target


# Stands in for the otel-obs distro where it is not available: the plain distro's set-up with
# otel-obs's instrumentor arguments merged in, as the otel-obs distro does.
WEB_ONLY_DISTRO = """
from opentelemetry.distro import OpenTelemetryDistro


class WebOnlyDistro(OpenTelemetryDistro):
    def load_instrumentor(self, entry_point, **kwargs):
        if entry_point.name == "fastapi":
            from otel_obs.web import fastapi_instrumentor_kwargs

            kwargs.update(fastapi_instrumentor_kwargs())
        super().load_instrumentor(entry_point, **kwargs)
        if entry_point.name == "celery":
            from otel_obs.tasks import on_instrumentor_loaded

            on_instrumentor_loaded()
"""


def _otel_obs_run_available() -> bool:
    spec = importlib.util.find_spec("otel_obs.distro")
    if spec is None:
        return False
    import otel_obs.distro

    return hasattr(otel_obs.distro, "run_run")


def _web_only_distro(workdir: Path) -> None:
    (workdir / "bench_web_distro.py").write_text(WEB_ONLY_DISTRO)
    info = workdir / "bench_web_distro-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bench-web-distro\nVersion: 0\n")
    (info / "entry_points.txt").write_text(
        "[opentelemetry_distro]\nweb_only = bench_web_distro:WebOnlyDistro\n"
    )


def telemetry_env(endpoint: str) -> dict[str, str]:
    return {
        "OTEL_SERVICE_NAME": "bench-http",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    }


def variants(cache: Path, workdir: Path) -> list[Variant]:
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    base_env["PYTHONPATH"] = str(workdir)
    plain_env = {
        **base_env,
        "PYTHONPATH": os.pathsep.join([str(workdir), str(plain_distro_dir(cache))]),
        "OTEL_PYTHON_DISTRO": "distro",
        "OTEL_PYTHON_CONFIGURATOR": "configurator",
    }
    instrument = [str(BIN / "opentelemetry-instrument")]
    if _otel_obs_run_available():
        ours = Variant("otel-obs", [str(BIN / "otel-obs"), "run", "--"], dict(base_env))
    else:
        _web_only_distro(workdir)
        ours = Variant(
            "otel-obs (web only)", instrument, {**plain_env, "OTEL_PYTHON_DISTRO": "web_only"}
        )
    return [Variant("bare", [], base_env), ours, Variant("plain OTel", instrument, plain_env)]


def start(variant: Variant, workdir: Path) -> None:
    variant.port = free_port()
    env = dict(variant.env)
    if variant.sink is not None:
        env.update(telemetry_env(f"http://127.0.0.1:{variant.sink.server_address[1]}"))
    argv = [
        *variant.argv_prefix,
        sys.executable,
        "-m",
        "uvicorn",
        "bench_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(variant.port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    log = (workdir / f"{variant.name.replace(' ', '-')}.log").open("wb")
    variant.process = subprocess.Popen(
        argv, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        url = f"http://127.0.0.1:{variant.port}{PATH}"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1):
            return
        if variant.process.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"{variant.name} did not start; see {log.name}")


def stop(variant: Variant) -> None:
    if variant.process is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(variant.process.pid, signal.SIGTERM)
    try:
        variant.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(variant.process.pid, signal.SIGKILL)
        variant.process.wait(timeout=5)


def group_cpu_seconds(group: int) -> float:
    """User + system CPU of every live process in process group ``group``."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group:
                ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def wrk(port: int, seconds: int, connections: int) -> dict:
    output = subprocess.run(
        [WRK, "-t1", f"-c{connections}", f"-d{seconds}s", f"http://127.0.0.1:{port}{PATH}"],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    if bad or errors:
        raise RuntimeError(f"wrk saw failures:\n{output}")
    return {
        "requests": requests,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
    }


def measure(variant: Variant, seconds: int, connections: int) -> dict:
    group = variant.process.pid
    sent_before = _Sink.received.get(variant.sink.server_address[1], 0) if variant.sink else 0
    cpu_before = group_cpu_seconds(group)
    load = wrk(variant.port, seconds, connections)
    cpu = group_cpu_seconds(group) - cpu_before
    sent = (
        (_Sink.received.get(variant.sink.server_address[1], 0) - sent_before) if variant.sink else 0
    )
    return {
        **load,
        "cpu_us_per_request": 1e6 * cpu / load["requests"],
        "otlp_bytes_per_request": sent / load["requests"],
    }


def summarise(all_variants: list[Variant]) -> dict:
    table = {}
    for variant in all_variants:
        table[variant.name] = {
            "rps": statistics.median(r["rps"] for r in variant.rounds),
            "cpu_us_per_request": statistics.median(
                r["cpu_us_per_request"] for r in variant.rounds
            ),
            "otlp_bytes_per_request": statistics.median(
                r["otlp_bytes_per_request"] for r in variant.rounds
            ),
        }
    bare, ours, plain = (table[v.name] for v in all_variants)
    for row in table.values():
        row["added_cpu_us_per_request"] = row["cpu_us_per_request"] - bare["cpu_us_per_request"]
        row["throughput_vs_bare"] = row["rps"] / bare["rps"]
    cpu_ratio = ours["added_cpu_us_per_request"] / plain["added_cpu_us_per_request"]
    return {
        "variants": table,
        "added_cpu_ratio_obs_vs_plain": cpu_ratio,
        "throughput_ratio_obs_vs_bare": ours["throughput_vs_bare"],
        "goals": {
            "added_cpu_ratio_max": GOAL_CPU_RATIO,
            "throughput_ratio_min": GOAL_THROUGHPUT_RATIO,
            "met": cpu_ratio <= GOAL_CPU_RATIO
            and ours["throughput_vs_bare"] >= GOAL_THROUGHPUT_RATIO,
        },
        "rounds": {v.name: v.rounds for v in all_variants},
    }


BREAKDOWN_SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": PATH,
    "raw_path": PATH.encode(),
    "query_string": b"",
    "root_path": "",
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
    "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"), (b"accept", b"*/*")],
}


def breakdown(endpoint: str, workdir: Path, rounds: int = 30, requests: int = 500) -> dict:
    """CPU per request through ASGI in this process (export threads included), by variant.

    Many short samples, variants alternating within each round, and the median of the
    per-round differences: on a shared machine, CPU speed drifts more between seconds
    than the few microseconds being measured.
    """
    import asyncio

    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from otel_obs.web import instrument_fastapi

    tracer_provider = TracerProvider()
    # A queue large enough for a whole sample, so that no variant drops spans.
    processor = BatchSpanProcessor(OTLPSpanExporter(f"{endpoint}/v1/traces"), max_queue_size=65536)
    tracer_provider.add_span_processor(processor)
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(f"{endpoint}/v1/metrics"), 5000)
    meter_provider = MeterProvider(metric_readers=[reader])
    providers = {"tracer_provider": tracer_provider, "meter_provider": meter_provider}

    sys.path.insert(0, str(workdir))
    from bench_app import create_app

    def app():
        return create_app(wait=0)  # CPU only: the 2 ms wait costs none

    apps = {
        "bare": app(),
        "official, no send spans": app(),
        "otel-obs": app(),
        "official, defaults": app(),
    }
    FastAPIInstrumentor.instrument_app(
        apps["official, no send spans"], exclude_spans=["receive", "send"], **providers
    )
    instrument_fastapi(apps["otel-obs"], **providers)
    FastAPIInstrumentor.instrument_app(apps["official, defaults"], **providers)

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        pass

    async def serve(asgi_app, count: int) -> None:
        for _ in range(count):
            await asgi_app(dict(BREAKDOWN_SCOPE), receive, send)

    def cpu_us_per_request(asgi_app, count: int) -> float:
        started = time.process_time()
        asyncio.run(serve(asgi_app, count))
        tracer_provider.force_flush()
        return 1e6 * (time.process_time() - started) / count

    for asgi_app in apps.values():
        cpu_us_per_request(asgi_app, 300)
    samples: dict[str, list[float]] = {name: [] for name in apps}
    names = list(apps)
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(cpu_us_per_request(apps[name], requests))
    tracer_provider.shutdown()
    meter_provider.shutdown()

    def paired(name: str, baseline: str) -> float:
        return statistics.median(a - b for a, b in zip(samples[name], samples[baseline]))

    cpu = {name: statistics.median(values) for name, values in samples.items()}
    added = {name: paired(name, "bare") for name in samples}
    own = paired("otel-obs", "official, no send spans")
    return {
        "cpu_us_per_request": cpu,
        "added_cpu_us_per_request": added,
        "own_steps_us": own_steps(),
        "otel_obs_own_us_per_request": own,
        "added_cpu_ratio_obs_vs_official_same_options": added["otel-obs"]
        / added["official, no send spans"],
    }


def own_steps(repeat: int = 20000) -> dict[str, float]:
    """Microseconds of each step otel-obs adds to a request, timed alone on a real span."""
    import timeit

    from opentelemetry import context
    from opentelemetry.instrumentation.asgi import asgi_setter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import set_span_in_context

    from otel_obs import web

    span = TracerProvider().get_tracer("bench").start_span("GET /campaigns/{campaign_id}")

    class Instrument:
        def record(self, *args, **kwargs) -> None:
            pass

        def add(self, *args, **kwargs) -> None:
            pass

    duration = web._ResponseTimedDuration(Instrument(), 1.0)
    duration.response_size = Instrument()
    active = web._RequestEndingCounter(Instrument())
    tap = web._ResponseTap(None)
    body = {"type": "http.response.body", "body": b"x" * 1024}

    def request_start() -> None:
        web._start_request(span, BREAKDOWN_SCOPE)

    def response_messages() -> None:
        start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"1024")],
        }
        for message in (start, body):
            tap.inject(
                message, context=set_span_in_context(span, context.Context()), setter=asgi_setter
            )

    def metric_wrappers() -> None:
        active.add(1, None)
        duration.record(0.01, None)
        active.add(-1, None)

    steps = {
        "request id (hook)": request_start,
        "response tap (2 messages)": response_messages,
        "metric wrappers": metric_wrappers,
    }
    return {name: 1e6 * timeit.timeit(step, number=repeat) / repeat for name, step in steps.items()}


def print_breakdown(result: dict) -> None:
    print("\nin process, no server (CPU us per request, export threads included):")
    for name, value in result["cpu_us_per_request"].items():
        print(
            f"  {name:<26} {value:>7.1f}   added {result['added_cpu_us_per_request'][name]:>6.1f}"
        )
    print(
        f"  otel-obs minus official with the same options (median of paired rounds): "
        f"{result['otel_obs_own_us_per_request']:.1f} us per request, ratio "
        f"{result['added_cpu_ratio_obs_vs_official_same_options']:.3f}"
    )
    steps = result["own_steps_us"]
    print(
        "  otel-obs's own steps timed alone: "
        + ", ".join(f"{k} {v:.1f} us" for k, v in steps.items())
        + f"; total {sum(steps.values()):.1f} us"
    )


def print_table(summary: dict) -> None:
    print(
        f"{'variant':<20} {'req/s':>8} {'CPU us/req':>11} {'added us/req':>13} "
        f"{'vs bare':>8} {'OTLP B/req':>11}"
    )
    for name, row in summary["variants"].items():
        print(
            f"{name:<20} {row['rps']:>8.0f} {row['cpu_us_per_request']:>11.1f} "
            f"{row['added_cpu_us_per_request']:>13.1f} {row['throughput_vs_bare']:>8.3f} "
            f"{row['otlp_bytes_per_request']:>11.0f}"
        )
    print(
        "added CPU per request, otel-obs / plain OTel: "
        f"{summary['added_cpu_ratio_obs_vs_plain']:.3f} (goal <= {GOAL_CPU_RATIO})"
    )
    print(
        f"throughput, otel-obs / bare: {summary['throughput_ratio_obs_vs_bare']:.3f} "
        f"(goal >= {GOAL_THROUGHPUT_RATIO})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("OTEL_OBS_CACHE_DIR", Path.home() / ".cache" / "otel-obs"))
        / "bench",
    )
    parser.add_argument("--in-process-only", action="store_true", help="skip the servers and wrk")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-http-"))
    (workdir / "bench_app.py").write_text(APP_SOURCE)
    if args.in_process_only:
        with sink() as in_process_sink:
            endpoint = f"http://127.0.0.1:{in_process_sink.server_address[1]}"
            print_breakdown(breakdown(endpoint, workdir))
        shutil.rmtree(workdir, ignore_errors=True)
        return 0
    if not Path(WRK).exists():
        print(f"{WRK} not found (Debian package wrk)", file=sys.stderr)
        return 2

    all_variants = variants(args.cache, workdir)
    print("variants:", ", ".join(v.name for v in all_variants), flush=True)
    with contextlib.ExitStack() as stack:
        for variant in all_variants[1:]:
            variant.sink = stack.enter_context(sink())
        try:
            for variant in all_variants:
                start(variant, workdir)
                wrk(variant.port, 2, args.connections)  # warm-up
            for round_number in range(args.rounds):
                shift = round_number % len(all_variants)
                for variant in all_variants[shift:] + all_variants[:shift]:
                    variant.rounds.append(measure(variant, args.seconds, args.connections))
        finally:
            for variant in all_variants:
                stop(variant)
        in_process_sink = all_variants[1].sink.server_address[1]
        in_process = breakdown(f"http://127.0.0.1:{in_process_sink}", workdir)
    shutil.rmtree(workdir, ignore_errors=True)

    summary = summarise(all_variants)
    summary.update(
        cores=os.cpu_count(),
        seconds=args.seconds,
        connections=args.connections,
        in_process=in_process,
    )
    print_table(summary)
    print_breakdown(in_process)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "http.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
