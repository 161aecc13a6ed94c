"""Start-up cost of `otel-obs run` against plain `opentelemetry-instrument`, side by side.

Each variant starts ``python -c`` with a program that prints the wall-clock time as its
first act and returns; rounds run the variants one after the other, in rotating order, so
that machine noise hits all of them alike:

- bare: ``python -c`` with no telemetry, for reference;
- otel-obs run: ``otel-obs run -- python -c``;
- opentelemetry-instrument (otel-obs distro): the same through the upstream launcher, which
  picks the otel-obs distro when it is installed;
- opentelemetry-instrument (plain): the upstream launcher with opentelemetry-distro and its
  configurator (installed on first run into the benchmark cache, outside the project's
  environment, so that it never competes with ours there).

Every exporter points at a closed port on 127.0.0.1. "ready" is the time from launch to
the program's first line; "exit" is the whole run, including the final flush (bounded by
``OTEL_OBS_SHUTDOWN_TIMEOUT`` for otel-obs and by ``OTEL_EXPORTER_OTLP_TIMEOUT`` for plain).

Run: ``python benchmarks/startup.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
PROGRAM = "import time; print(time.time(), flush=True)"


@dataclass
class Variant:
    name: str
    prefix: list[str]
    env: dict[str, str]
    ready: list[float] = field(default_factory=list)
    exit: list[float] = field(default_factory=list)


def closed_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def plain_distro_dir(cache: Path) -> Path:
    """opentelemetry-distro matching the installed instrumentations, in a directory of its own."""
    from opentelemetry.instrumentation.version import __version__

    target = cache / f"opentelemetry-distro-{__version__}"
    if not (target / "opentelemetry" / "distro").is_dir():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
             str(target), f"opentelemetry-distro=={__version__}"],
            check=True,
        )
    return target


def variants(cache: Path) -> list[Variant]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    telemetry = {
        **base,
        "OTEL_SERVICE_NAME": "bench-startup",
        "OTEL_EXPORTER_OTLP_ENDPOINT": closed_endpoint(),
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
        "OTEL_OBS_SHUTDOWN_TIMEOUT": "0.5",
        "OTEL_OBS_LOG_STDOUT": "false",
    }
    plain = {
        **telemetry,
        "PYTHONPATH": str(plain_distro_dir(cache)),
        "OTEL_PYTHON_DISTRO": "distro",
        "OTEL_PYTHON_CONFIGURATOR": "configurator",
    }
    instrument = [str(BIN / "opentelemetry-instrument")]
    return [
        Variant("bare", [], base),
        Variant("otel-obs run", [str(BIN / "otel-obs"), "run", "--"], telemetry),
        Variant("opentelemetry-instrument (otel-obs distro)", instrument, telemetry),
        Variant("opentelemetry-instrument (plain)", instrument, plain),
    ]


def measure(variant: Variant) -> None:
    launched = time.time()
    started = time.monotonic()
    result = subprocess.run(
        [*variant.prefix, sys.executable, "-c", PROGRAM],
        env=variant.env, capture_output=True, text=True, timeout=120, check=False,
    )
    variant.exit.append(time.monotonic() - started)
    if result.returncode != 0 or not result.stdout.strip():
        raise SystemExit(f"{variant.name} failed: {result.stderr[-2000:]}")
    variant.ready.append(float(result.stdout.split()[0]) - launched)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("OTEL_OBS_CACHE_DIR", Path.home() / ".cache" / "otel-obs"))
        / "bench",
    )
    args = parser.parse_args(argv)

    all_variants = variants(args.cache)
    for variant in all_variants:  # warm the file cache; not counted
        measure(variant)
        variant.ready.clear()
        variant.exit.clear()
    for round_number in range(args.rounds):
        shift = round_number % len(all_variants)
        for variant in all_variants[shift:] + all_variants[:shift]:
            measure(variant)

    print(f"{args.rounds} rounds, median seconds")
    print(f"{'variant':<45} {'ready':>7} {'exit':>7}")
    for variant in all_variants:
        ready, whole = statistics.median(variant.ready), statistics.median(variant.exit)
        print(f"{variant.name:<45} {ready:7.3f} {whole:7.3f}")
    by_name = {variant.name: variant for variant in all_variants}
    ours = statistics.median(by_name["otel-obs run"].ready)
    plain = statistics.median(by_name["opentelemetry-instrument (plain)"].ready)
    bare = statistics.median(by_name["bare"].ready)
    print(f"ready ratio otel-obs run / plain opentelemetry-instrument: {ours / plain:.2f}")
    print(f"added to bare python: otel-obs run {ours - bare:.3f} s, plain {plain - bare:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
