"""Running ``otel-obs demo`` as a real command and reading its JSON summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

TIMEOUT_S = 240


def run_demo(*args: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    """Run the demo with ``--json``; return the parsed summary and its stderr."""
    command = [sys.executable, "-m", "otel_obs.cli", "demo", "--json", *args]
    completed = subprocess.run(
        command,
        check=False,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env={**os.environ, **(env or {})},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert completed.returncode == 0, (
        f"demo exited {completed.returncode}\nstderr:\n{completed.stderr[-4000:]}"
    )
    try:
        return json.loads(completed.stdout), completed.stderr
    except ValueError as error:
        raise AssertionError(
            f"stdout is not one JSON document: {completed.stdout[:2000]!r}"
        ) from error


def status_counts(summary: dict[str, Any]) -> dict[str, int]:
    """HTTP status codes the workload received, summed over every kind of request."""
    totals: dict[str, int] = {}
    for statuses in summary["demo"]["workload"]["by_kind"].values():
        for status, count in statuses.items():
            if status != "0":
                totals[status] = totals.get(status, 0) + count
    return totals


def kind_count(summary: dict[str, Any], kind: str, status: str) -> int:
    return summary["demo"]["workload"]["by_kind"].get(kind, {}).get(status, 0)
