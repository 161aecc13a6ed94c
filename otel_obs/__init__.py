"""otel-obs: an OpenTelemetry distribution for Python services.

``configure()`` once at start-up (or ``otel-obs run -- CMD`` with no code at all) sets up
traces, metrics and logs over OTLP from the environment. The rest of the public surface is
re-exported here and guarded by a test of ``__all__``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "__version__",
    "ai",
    "business",
    "configure",
    "instrument_celery",
    "instrument_fastapi",
    "shutdown",
]


def configure(**overrides: Any) -> Any:
    """Set up traces, metrics and logs from the environment; see ``otel_obs.setup.configure``."""
    from otel_obs.setup import configure as _configure

    return _configure(**overrides)


def shutdown(timeout: float | None = None) -> bool:
    """Flush and stop telemetry within ``timeout`` seconds (default OTEL_OBS_SHUTDOWN_TIMEOUT)."""
    from otel_obs.setup import shutdown as _shutdown

    return _shutdown(timeout)


def instrument_fastapi(app: Any, **kwargs: Any) -> Any:
    """Instrument one FastAPI app with otel-obs defaults; safe to call more than once."""
    from otel_obs.web import instrument_fastapi as _instrument

    return _instrument(app, **kwargs)


def instrument_celery(app: Any = None, **kwargs: Any) -> Any:
    """Instrument Celery (workers and producers) with otel-obs defaults."""
    from otel_obs.tasks import instrument_celery as _instrument

    return _instrument(app, **kwargs)


def __getattr__(name: str) -> Any:
    # `ai` and `business` are subpackages imported on first use, so that importing
    # otel_obs stays cheap for services that use neither; the version reads package
    # metadata, which `otel-obs run` has no use for before it starts the command.
    if name in ("ai", "business"):
        import importlib

        return importlib.import_module(f"otel_obs.{name}")
    if name == "__version__":
        from otel_obs.version import __version__

        return __version__
    raise AttributeError(f"module 'otel_obs' has no attribute {name!r}")
