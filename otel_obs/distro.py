"""Zero-code start: the distro and configurator entry points, and ``otel-obs run``.

``opentelemetry-instrument CMD`` and ``otel-obs run -- CMD`` both start CMD with the
auto-instrumentation ``sitecustomize`` on its path. That loads ``ObsDistro``, then
``ObsConfigurator`` (which calls the same setup function as ``otel_obs.configure()``),
then every installed instrumentor through ``ObsDistro.load_instrumentor``, where otel-obs
adds its FastAPI and Celery defaults.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro

try:  # the configurator base class moved between SDK releases
    from opentelemetry.sdk._configuration import _BaseConfigurator
except ImportError:  # pragma: no cover
    _BaseConfigurator = object  # type: ignore[assignment,misc]

from otel_obs._guard import guard

_logger = logging.getLogger(__name__)

DISTRO_NAME = "otel_obs"


class ObsDistro(BaseDistro):
    """Selects otel-obs's configurator and adds our defaults to instrumentors as they load."""

    def _configure(self, **kwargs: Any) -> None:
        os.environ.setdefault("OTEL_PYTHON_CONFIGURATOR", DISTRO_NAME)
        os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        from otel_obs.config import get_settings
        from otel_obs.setup import disabled_instrumentations

        if entry_point.name in disabled_instrumentations(get_settings()):
            _logger.debug("otel-obs replaces or disables instrumentation %s", entry_point.name)
            return
        if entry_point.name == "fastapi":
            with guard("adding FastAPI defaults"):
                from otel_obs.web import fastapi_instrumentor_kwargs

                kwargs = {**fastapi_instrumentor_kwargs(), **kwargs}
        super().load_instrumentor(entry_point, **kwargs)
        if entry_point.name == "celery":
            with guard("adding Celery defaults"):
                from otel_obs.tasks import on_instrumentor_loaded

                on_instrumentor_loaded()


class ObsConfigurator(_BaseConfigurator):  # type: ignore[misc,valid-type]
    """The ``opentelemetry_configurator`` entry point: the same setup as ``configure()``."""

    def _configure(self, **kwargs: Any) -> None:
        from otel_obs.setup import _configure

        _configure({}, zero_code=True)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="COMMAND", help="the command to run, after --")


def _auto_instrumentation_path() -> str:
    from opentelemetry.instrumentation import auto_instrumentation

    return os.path.dirname(os.path.abspath(auto_instrumentation.__file__))


def run_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment under which a command starts with otel-obs configured."""
    env = dict(os.environ if environ is None else environ)
    path = env.get("PYTHONPATH", "")
    entries = [_auto_instrumentation_path(), *[p for p in path.split(os.pathsep) if p]]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(entries))
    env["OTEL_PYTHON_DISTRO"] = DISTRO_NAME
    env["OTEL_PYTHON_CONFIGURATOR"] = DISTRO_NAME
    return env


def run_run(args: argparse.Namespace) -> int:
    command = list(args.argv)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("otel-obs run: give the command to run, e.g. otel-obs run -- uvicorn app:app", file=sys.stderr)
        return 2
    executable = shutil.which(command[0])
    if executable is None:
        print(f"otel-obs run: command not found: {command[0]}", file=sys.stderr)
        return 127
    os.execve(executable, command, run_environment())
    return 0  # not reached
