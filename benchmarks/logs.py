"""Records per second: otel-obs's masked JSON lines against two unmasked JSON formatters.

The same standard ``logging`` records, a realistic mix (access-log lines, application
lines with ids, amounts and extra fields, some personal data and secrets, a few
exceptions), are formatted and written to the same in-memory sink by:

- otel-obs: ``otel_obs.logs.JsonFormatter`` with the masking engine on;
- otel-obs, masking off: the same formatter with ``OTEL_OBS_REDACT=false`` (what masking costs);
- python-json-logger: ``JsonFormatter`` with time, level, logger name, message and extras;
- structlog: ``ProcessorFormatter`` with level, logger name, ISO time, extras and
  ``JSONRenderer``, the usual way to render standard-library records as JSON.

Rounds alternate the variants in rotating order so machine noise hits all alike; the
median round counts. The process is pinned to one core. Goals: otel-obs >= 50,000
records/s, and >= 0.5 of each unmasked baseline.

Run: ``python benchmarks/logs.py [--records N] [--rounds R] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import os
import platform
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
GOAL_RATE = 50_000
GOAL_RATIO = 0.5


def _exc_info() -> tuple:
    try:
        raise TimeoutError("upstream ads-api timed out after 30.0 s")
    except TimeoutError:
        return sys.exc_info()


def make_records(count: int, seed: int = 7) -> list[logging.LogRecord]:
    """A deterministic mix of records as a web service and its workers write them."""
    rng = random.Random(seed)
    exc_info = _exc_info()
    clock = iter(1733307332.123 + index * 0.0004 for index in range(count))

    def record(name, level, msg, args=(), extra=None, exc=None):
        item = logging.LogRecord(name, level, "/srv/app/shop/api.py", 42, msg, args, exc)
        item.created = next(clock)  # records come in time order, a few thousand a second
        for key, value in (extra or {}).items():
            setattr(item, key, value)
        return item

    makers: list[tuple[int, Callable[[], logging.LogRecord]]] = [
        (
            30,
            lambda: record(
                "uvicorn.access",
                logging.INFO,
                '%s - "%s %s HTTP/%s" %d',
                (
                    f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}:{rng.randint(30000, 60000)}",
                    rng.choice(["GET", "POST"]),
                    f"/api/v1/campaigns/{rng.randint(1, 99999)}?page={rng.randint(1, 9)}",
                    "1.1",
                    rng.choice([200, 200, 201, 404]),
                ),
            ),
        ),
        (
            25,
            lambda: record(
                "shop.orders",
                logging.INFO,
                "order %s created for campaign %d total %.2f %s",
                (
                    f"ord-{rng.randint(10**5, 10**6)}",
                    rng.randint(1, 9999),
                    rng.random() * 900,
                    "EUR",
                ),
                {
                    "duration_ms": round(rng.random() * 90, 2),
                    "customer_tier": rng.choice(["pro", "free"]),
                },
            ),
        ),
        (
            15,
            lambda: record(
                "shop.ai",
                logging.INFO,
                "model %s used %d input and %d output tokens in %.1f s",
                ("gpt-4o-mini", rng.randint(100, 9000), rng.randint(10, 900), rng.random() * 4),
                {"gen_ai.request.model": "gpt-4o-mini", "cost_usd": round(rng.random() / 100, 6)},
            ),
        ),
        (
            10,
            lambda: record(
                "celery.app.trace",
                logging.INFO,
                "Task %s[%s] succeeded in %ss: %r",
                (
                    "shop.tasks.render_video",
                    f"{rng.getrandbits(128):032x}",
                    round(rng.random() * 3, 4),
                    None,
                ),
            ),
        ),
        (
            8,
            lambda: record(
                "shop.worker",
                logging.DEBUG,
                "queue %s depth=%d oldest=%.1fs",
                ("video-render", rng.randint(0, 500), rng.random() * 30),
            ),
        ),
        (
            6,
            lambda: record(
                "shop.accounts",
                logging.INFO,
                "password reset requested by %s from %s",
                (
                    f"user{rng.randint(1, 9999)}@example.co.uk",
                    f"+44 20 7946 {rng.randint(1000, 9999)}",
                ),
            ),
        ),
        (
            3,
            lambda: record(
                "shop.billing",
                logging.WARNING,
                "charge declined for card %s",
                ("4111 1111 1111 1111",),
                {"api_key": f"sk_live_{rng.getrandbits(96):024x}"},
            ),
        ),
        (
            2,
            lambda: record(
                "httpx",
                logging.INFO,
                'HTTP Request: %s %s "%s"',
                ("POST", "https://api.openai.com/v1/chat/completions", "HTTP/1.1 200 OK"),
            ),
        ),
        (
            1,
            lambda: record(
                "shop.api",
                logging.ERROR,
                "upstream call failed for campaign %d",
                (rng.randint(1, 9999),),
                exc=exc_info,
            ),
        ),
    ]
    weights = [weight for weight, _ in makers]
    return [rng.choices(makers, weights)[0][1]() for _ in range(count)]


def formatters() -> dict[str, logging.Formatter]:
    from pythonjsonlogger.json import JsonFormatter as PythonJsonFormatter
    from structlog.processors import JSONRenderer, TimeStamper, add_log_level
    from structlog.stdlib import ExtraAdder, ProcessorFormatter, add_logger_name

    from otel_obs.logs import JsonFormatter
    from otel_obs.redact import Redactor

    return {
        "otel-obs (masking on)": JsonFormatter("shop", Redactor()),
        "otel-obs (masking off)": JsonFormatter("shop", Redactor(enabled=False)),
        "python-json-logger": PythonJsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"),
        "structlog": ProcessorFormatter(
            processor=JSONRenderer(),
            foreign_pre_chain=[
                add_log_level,
                add_logger_name,
                TimeStamper(fmt="iso", utc=True),
                ExtraAdder(),
            ],
        ),
    }


def one_pass(formatter: logging.Formatter, records: list[logging.LogRecord]) -> float:
    sink = io.StringIO()
    write, format_record = sink.write, formatter.format
    started = time.perf_counter()
    for record in records:
        record.exc_text = None  # no variant may reuse another's cached traceback text
        write(format_record(record) + "\n")
    return time.perf_counter() - started


def run(count: int, rounds: int) -> dict:
    records = make_records(count)
    variants = formatters()
    names = list(variants)
    for name in names:  # warm caches and imports
        one_pass(variants[name], records[:500])
    timings: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        order = names[index % len(names) :] + names[: index % len(names)]
        for name in order:
            timings[name].append(one_pass(variants[name], records))
    rates = {name: count / statistics.median(values) for name, values in timings.items()}
    ours = rates["otel-obs (masking on)"]
    return {
        "records": count,
        "rounds": rounds,
        "records_per_second": {name: round(rate) for name, rate in rates.items()},
        "ratio_vs_python_json_logger": round(ours / rates["python-json-logger"], 3),
        "ratio_vs_structlog": round(ours / rates["structlog"], 3),
        "masking_cost_us_per_record": round(1e6 / ours - 1e6 / rates["otel-obs (masking off)"], 2),
        "goals": {
            "records_per_second_min": GOAL_RATE,
            "ratio_min": GOAL_RATIO,
            "met": ours >= GOAL_RATE
            and ours / rates["python-json-logger"] >= GOAL_RATIO
            and ours / rates["structlog"] >= GOAL_RATIO,
        },
        "python": platform.python_version(),
    }


def profile(count: int) -> None:
    records = make_records(count)
    formatter = formatters()["otel-obs (masking on)"]
    profiler = cProfile.Profile()
    profiler.enable()
    one_pass(formatter, records)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--profile", action="store_true", help="print where otel-obs spends its time"
    )
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    if args.profile:
        profile(args.records)
        return 0

    result = run(args.records, args.rounds)
    for name, rate in result["records_per_second"].items():
        print(f"{name:<24} {rate:>10,} records/s")
    print(f"otel-obs / python-json-logger: {result['ratio_vs_python_json_logger']:.2f}")
    print(f"otel-obs / structlog:          {result['ratio_vs_structlog']:.2f}")
    cost, met = result["masking_cost_us_per_record"], result["goals"]["met"]
    print(f"masking costs {cost} us per record; goals met: {met}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "logs.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
