"""``otel-obs demo``: run an instrumented ad-platform service end to end and summarise it.

The API (FastAPI under uvicorn), a Celery worker and a local LLM server run as real
processes for ``--duration`` seconds of traffic; the summary shows one whole trace, route
latency, LLM tokens and cost, the business KPIs, the masked logs of the trace, and where
to see each of them in Grafana.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="seconds of traffic to send (default 30)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the summary as one JSON document on stdout (progress stays on stderr)",
    )
    parser.add_argument(
        "--broker",
        choices=("auto", "redis", "filesystem"),
        default="auto",
        help="Celery broker: a Redis server started for the demo, or kombu's filesystem "
        "transport; auto (the default) uses Redis when redis-server is installed",
    )
    parser.add_argument(
        "--redis-url",
        metavar="URL",
        help="use this running Redis as the broker instead of starting one",
    )
    parser.add_argument(
        "--no-stack",
        action="store_true",
        help="do not forward telemetry to a running stack; keep it in the demo's receiver only",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary directory with each process's output",
    )


def run_demo(args: argparse.Namespace) -> int:
    from otel_obs.demo import render, runner

    if not 1 <= args.duration <= 3600:
        print("otel-obs demo: --duration must be between 1 and 3600 seconds", file=sys.stderr)
        return 2
    options = runner.Options(
        duration=args.duration,
        as_json=args.json,
        broker=args.broker,
        redis_url=args.redis_url,
        keep=args.keep,
        use_stack=not args.no_stack,
    )
    try:
        summary, code = runner.run(options)
    except KeyboardInterrupt:
        print("otel-obs demo: interrupted; every process it started was stopped", file=sys.stderr)
        return 130
    if summary is None:
        return code
    if args.json:
        json.dump(summary, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render.text(summary))
    sys.stdout.flush()
    return code
