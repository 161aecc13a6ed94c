"""Fixtures for the whole suite: a real OTLP/HTTP receiver and a clean-environment runner.

Errors inside otel-obs's guard are raised, not swallowed, for the whole test session, so a
bug hidden by the guard fails a test; tests that prove the swallowing unset the variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from clean_env import RunResult, run_code

from otel_obs.receiver import OTLPReceiver

os.environ["OTEL_OBS_RAISE_INTERNAL_ERRORS"] = "true"


@pytest.fixture
def otlp_receiver() -> Iterator[OTLPReceiver]:
    """A real OTLP/HTTP protobuf receiver on 127.0.0.1 and a free port."""
    with OTLPReceiver() as receiver:
        yield receiver


@pytest.fixture
def run_python() -> Callable[..., RunResult]:
    """``run_python(code, env=..., timeout=...) -> (returncode, stdout, stderr, elapsed)``."""
    return run_code
