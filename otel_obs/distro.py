"""Zero-code start: the distro and configurator entry points behind ``otel-obs run``.

``opentelemetry-instrument CMD`` and ``otel-obs run -- CMD`` both start CMD with the
auto-instrumentation ``sitecustomize`` on its path. That loads ``ObsDistro``, then
``ObsConfigurator`` (which calls the same setup function as ``otel_obs.configure()``),
then every installed instrumentor through ``ObsDistro.load_instrumentor``, where otel-obs
adds its FastAPI and Celery defaults.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro

try:  # the configurator base class moved between SDK releases
    from opentelemetry.sdk._configuration import _BaseConfigurator
except ImportError:  # pragma: no cover
    _BaseConfigurator = object  # type: ignore[assignment,misc]

from otel_obs._guard import guard
from otel_obs._run import DISTRO_NAME, add_run_arguments, run_environment, run_run

__all__ = ["ObsConfigurator", "ObsDistro", "add_run_arguments", "run_environment", "run_run"]

_logger = logging.getLogger(__name__)


class ObsDistro(BaseDistro):
    """Selects otel-obs's configurator and adds our defaults to instrumentors as they load."""

    def _configure(self, **kwargs: Any) -> None:
        os.environ.setdefault("OTEL_PYTHON_CONFIGURATOR", DISTRO_NAME)
        os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
        if os.environ["OTEL_PYTHON_CONFIGURATOR"] == DISTRO_NAME:
            _quiet_skipped_configurators()

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        from otel_obs.config import get_settings
        from otel_obs.setup import disabled_instrumentations

        settings = get_settings()
        if settings.sdk_disabled:
            # Off means off: an instrumentor would still patch libraries, and the logging one
            # would put a handler on the root logger that silences Python's own last resort.
            return
        if entry_point.name in disabled_instrumentations(settings):
            _logger.debug("otel-obs replaces or disables instrumentation %s", entry_point.name)
            return
        if entry_point.name == "logging" and _logs_installed():
            # otel_obs.logs already put its OTLP handler on the root logger: a second one
            # would export every record twice. The instrumentation still adds trace context.
            kwargs = {**kwargs, "enable_log_auto_instrumentation": False}
        if entry_point.name == "fastapi":
            with guard("adding FastAPI defaults"):
                from otel_obs.web import fastapi_instrumentor_kwargs

                kwargs = {**fastapi_instrumentor_kwargs(), **kwargs}
        super().load_instrumentor(entry_point, **kwargs)
        if entry_point.name == "logging":
            _exclude_internal_records()
        if entry_point.name == "celery":
            with guard("adding Celery defaults"):
                from otel_obs.tasks import on_instrumentor_loaded

                on_instrumentor_loaded()


class _ChosenConfiguratorFilter(logging.Filter):
    """Drop the loader's warning that it skipped another configurator because ours was chosen.

    With opentelemetry-distro installed beside otel-obs, the loader says so on every start,
    though choosing ours is exactly what ``OTEL_PYTHON_CONFIGURATOR=otel_obs`` asked for.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        chosen = len(args) == 3 and args[1] == DISTRO_NAME
        return not (chosen and str(record.msg).startswith("Configuration of %s not loaded"))


def _quiet_skipped_configurators() -> None:
    loader = logging.getLogger("opentelemetry.instrumentation.auto_instrumentation._load")
    if not any(isinstance(f, _ChosenConfiguratorFilter) for f in loader.filters):
        loader.addFilter(_ChosenConfiguratorFilter())


def _logs_installed() -> bool:
    try:
        from otel_obs.logs import installed_handlers
    except ImportError:
        return False
    return bool(installed_handlers())


def _exclude_internal_records() -> None:
    """Keep the logging instrumentation's root handler off our and the SDK's own loggers.

    Otherwise a failed log export logs a warning that the handler exports, which fails
    and logs again, for as long as the endpoint is down.
    """
    from opentelemetry.instrumentation.logging import LoggingInstrumentor

    from otel_obs._diag import exclude_internal_loggers

    exclude_internal_loggers(getattr(LoggingInstrumentor, "_logging_handler", None))


class ObsConfigurator(_BaseConfigurator):  # type: ignore[misc,valid-type]
    """The ``opentelemetry_configurator`` entry point: the same setup as ``configure()``."""

    def _configure(self, **kwargs: Any) -> None:
        from otel_obs.setup import _configure, disabled_instrumentations

        settings = _configure({}, zero_code=True)
        # The loader reads this list before it asks the distro, and logs an error for an
        # instrumentation we replace whose library version it does not support.
        os.environ["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = ",".join(
            disabled_instrumentations(settings)
        )
