"""otel-obs's own diagnostics: one logger, warnings once or rate-limited.

Everything otel-obs says about itself goes through the ``otel_obs`` logger tree. The log
export path never takes records from it (nor from ``opentelemetry``), so a failing export
cannot log about itself in a loop.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

diag_logger = logging.getLogger("otel_obs")

# Logger trees whose records never go to the OTLP log exporter: ours and the SDK's.
INTERNAL_LOGGER_PREFIXES = ("otel_obs", "opentelemetry")

_lock = threading.Lock()
_warned_once: set[str] = set()
_last_warned: dict[str, float] = {}
_suppressed: dict[str, int] = {}

RATE_LIMIT_SECONDS = 60.0


def is_internal_logger(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in INTERNAL_LOGGER_PREFIXES)


class InternalLoggerFilter(logging.Filter):
    """Refuse records of otel-obs's and the SDK's own loggers (put on OTLP log handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not is_internal_logger(record.name)


def exclude_internal_loggers(handler: logging.Handler | None) -> None:
    """Keep ``handler`` from ever exporting a record about telemetry itself."""
    if handler is None:
        return
    if not any(isinstance(f, InternalLoggerFilter) for f in handler.filters):
        handler.addFilter(InternalLoggerFilter())


def _is_otlp_handler(handler: logging.Handler) -> bool:
    return any(
        cls.__name__ == "LoggingHandler" and cls.__module__.startswith("opentelemetry")
        for cls in type(handler).__mro__
    )


def _writes_somewhere(handler: logging.Handler) -> bool:
    # An OTLP handler takes no internal records, so it does not count as an output.
    if _is_otlp_handler(handler):
        return False
    return not any(isinstance(f, InternalLoggerFilter) for f in handler.filters)


class _StderrFallback(logging.StreamHandler):
    """Write our warnings to stderr when no handler up the logger tree would show them.

    Python's own last-resort output stays silent as soon as the root logger has any
    handler, and an OTLP handler alone refuses our records: without this, a warning such
    as "telemetry was dropped" would reach nobody.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(logging.Formatter("%(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        logger: logging.Logger | None = diag_logger.parent if diag_logger.propagate else None
        while logger is not None:
            if any(_writes_somewhere(h) for h in logger.handlers):
                return
            logger = logger.parent if logger.propagate else None
        self.stream = sys.stderr
        super().emit(record)


diag_logger.addHandler(_StderrFallback())


def warn_once(key: str, message: str, *args: Any, logger: logging.Logger = diag_logger) -> bool:
    """Log ``message`` at WARNING the first time ``key`` is seen; return whether it logged."""
    with _lock:
        if key in _warned_once:
            return False
        _warned_once.add(key)
    logger.warning(message, *args)
    return True


def warn_rate_limited(
    key: str,
    message: str,
    *args: Any,
    interval: float = RATE_LIMIT_SECONDS,
    logger: logging.Logger = diag_logger,
    exc_info: bool = False,
) -> bool:
    """Log at most once per ``interval`` seconds for ``key``, counting what was held back."""
    now = time.monotonic()
    with _lock:
        last = _last_warned.get(key)
        if last is not None and now - last < interval:
            _suppressed[key] = _suppressed.get(key, 0) + 1
            return False
        _last_warned[key] = now
        held_back = _suppressed.pop(key, 0)
    if held_back:
        message += " (%d similar messages suppressed)"
        args = (*args, held_back)
    logger.warning(message, *args, exc_info=exc_info)
    return True


def reset_for_tests() -> None:
    with _lock:
        _warned_once.clear()
        _last_warned.clear()
        _suppressed.clear()


class RateLimitFilter(logging.Filter):
    """Let through one record per logger and message template per ``interval`` seconds.

    Attached to the SDK's exporter loggers, whose warnings come once per failed batch or per
    dropped item; the count held back is added to the next record that passes.
    """

    def __init__(self, interval: float = RATE_LIMIT_SECONDS) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[tuple[str, object], float] = {}
        self._held: dict[tuple[str, object], int] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        # Some SDK messages are pre-formatted (delays, counts): group them by their start.
        key = (record.name, str(record.msg)[:40])
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            self._last[key] = now
            held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} ({held} similar messages suppressed)"
        return True
