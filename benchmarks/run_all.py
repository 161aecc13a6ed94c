"""Run every benchmark in this folder with a small budget, one after the other.

Each script keeps its own defaults for a full run; here each gets the few options that
shorten it (passed only if the script still offers them, as its ``--help`` shows). A new
script with no entry below runs with its defaults. Figures from a short run are noisier:
use them to see that every benchmark works, and the scripts themselves for figures.

Run: ``python benchmarks/run_all.py [--only NAME ...]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

SMALL_BUDGET: dict[str, list[str]] = {
    "ai_span": ["--rounds", "3", "--spans", "500"],
    "collector": ["--step-seconds", "1"],
    "http_service": ["--rounds", "1", "--seconds", "2"],
    "logs": ["--records", "1000", "--rounds", "2"],
    "startup": ["--rounds", "3"],
}
TIMEOUT_SECONDS = 900

PYTHON = [sys.executable]


def _offered(script: Path, options: list[str]) -> list[str]:
    """Keep the ``--flag value`` pairs whose flag the script's help still lists."""
    help_text = subprocess.run(
        [*PYTHON, str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
    ).stdout
    kept = []
    for flag, value in zip(options[::2], options[1::2]):
        if flag in help_text:
            kept += [flag, value]
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="benchmark names to run")
    args = parser.parse_args(argv)

    scripts = sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name)
    if args.only:
        scripts = [p for p in scripts if p.stem in args.only]
    failed = []
    for script in scripts:
        options = _offered(script, SMALL_BUDGET.get(script.stem, []))
        print(f"== {script.stem} {' '.join(options)}", flush=True)
        started = time.monotonic()
        try:
            code = subprocess.run([*PYTHON, str(script), *options],
                                  timeout=TIMEOUT_SECONDS, check=False).returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
        took = time.monotonic() - started
        print(f"== {script.stem}: exit {code} after {took:.0f} s\n", flush=True)
        if code != 0:
            failed.append(script.stem)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
