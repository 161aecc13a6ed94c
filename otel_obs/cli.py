"""The ``otel-obs`` command.

Each subcommand lives with the module that does its job; this file only dispatches. A
module serving command ``NAME`` defines ``add_NAME_arguments(parser)`` and
``run_NAME(args) -> int``, and is imported only when that command runs, so that
``otel-obs run`` starts as fast as the command it wraps.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("otel_obs._run", "run a command with telemetry configured, no code changes"),
    "doctor": ("otel_obs.doctor", "check the configuration and OTLP endpoints; exit 2 on error"),
    "config": ("otel_obs.doctor", "print the effective settings and where each came from"),
    "prices": ("otel_obs.ai.pricing", "print the prices used for a model and their source"),
    "stack": ("otel_obs.stack", "start, stop or inspect the local backends"),
    "demo": ("otel_obs.demo", "run the instrumented sample service end to end"),
}


def _build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otel-obs", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        # Import only the module of the command being run; the others just list their help.
        if name in argv:
            module = importlib.import_module(module_name)
            getattr(module, f"add_{name}_arguments")(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `run` passes everything after its own options to the wrapped command untouched.
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = _build_parser([command] if command else [])
    args = parser.parse_args(argv)

    if args.version:
        from otel_obs.version import __version__

        print(__version__)
        return 0
    if not args.command:
        parser.print_help()
        return 2

    module = importlib.import_module(COMMANDS[args.command][0])
    return int(getattr(module, f"run_{args.command}")(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
