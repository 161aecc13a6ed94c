"""``otel-obs run -- CMD``: start CMD with the auto-instrumentation ``sitecustomize`` on its path.

This process only prepares the environment and replaces itself with CMD, so it imports
nothing from OpenTelemetry: whatever it loaded would be thrown away by the ``exec``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys

DISTRO_NAME = "otel_obs"


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "argv", nargs=argparse.REMAINDER, metavar="COMMAND", help="the command to run, after --"
    )


def _auto_instrumentation_path() -> str:
    # Located, not imported: importing the package loads the instrumentation machinery.
    spec = importlib.util.find_spec("opentelemetry.instrumentation.auto_instrumentation")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("opentelemetry-instrumentation is not installed")
    return os.path.abspath(next(iter(spec.submodule_search_locations)))


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
        print(
            "otel-obs run: give the command to run, e.g. otel-obs run -- uvicorn app:app",
            file=sys.stderr,
        )
        return 2
    executable = shutil.which(command[0])
    if executable is None:
        print(f"otel-obs run: command not found: {command[0]}", file=sys.stderr)
        return 127
    os.execve(executable, command, run_environment())
    return 0  # not reached
