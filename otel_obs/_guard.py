"""The one guard between user code and telemetry code.

Anything user code calls into (a hook, a wrapper around an LLM client, a processor run on
the application's thread) runs under ``guard``. An error there is logged, rate-limited, and
swallowed, so telemetry never takes the service down. Our own test suite sets
``OTEL_OBS_RAISE_INTERNAL_ERRORS=true`` so that the same errors fail tests instead of
hiding; tests that prove the swallowing turn it off again.
"""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

from otel_obs._diag import diag_logger, warn_rate_limited

F = TypeVar("F", bound=Callable[..., Any])

RAISE_ENV = "OTEL_OBS_RAISE_INTERNAL_ERRORS"


def _raise_internal_errors() -> bool:
    return os.environ.get(RAISE_ENV, "").strip().lower() in ("1", "true", "yes")


@contextmanager
def guard(what: str) -> Iterator[None]:
    """Run the body; log and swallow any exception it raises, naming ``what`` failed."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 (this is the boundary that must catch all)
        if _raise_internal_errors():
            raise
        warn_rate_limited(
            f"guard:{what}",
            "otel-obs: %s failed (%s: %s); the application continues without it",
            what,
            type(error).__name__,
            error,
            exc_info=diag_logger.isEnabledFor(10),
        )


def guarded(what: str, default: Any = None) -> Callable[[F], F]:
    """Decorate a function so that an exception inside it returns ``default`` instead."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with guard(what):
                return func(*args, **kwargs)
            return default

        return wrapper  # type: ignore[return-value]

    return decorate
