"""Run Python in a subprocess with a clean ``OTEL_*`` environment (shared by the suite).

A module of its own rather than the root conftest: test modules import these helpers by
name, and several folders of the suite have a conftest module of the same name.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping

RunResult = tuple[int, str, str, float]


def clean_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` without ``OTEL_*`` variables (but the test switch), ``env`` on top."""
    base = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("OTEL_") or name == "OTEL_OBS_RAISE_INTERNAL_ERRORS"
    }
    base["PYTHONUNBUFFERED"] = "1"
    base.update(env or {})
    return base


def run_code(code: str, env: Mapping[str, str] | None = None, timeout: float = 60) -> RunResult:
    """Run ``python -c code`` with a clean OTEL_* environment plus ``env``."""
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-c", code],
        env=clean_environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    elapsed = time.monotonic() - started
    return completed.returncode, completed.stdout, completed.stderr, elapsed
