"""Builds the tracer, meter and logger providers from settings (being written)."""

from __future__ import annotations

from typing import Any


def configure(**overrides: Any) -> None:
    raise NotImplementedError("configure() is being written")


def shutdown(timeout: float | None = None) -> None:
    raise NotImplementedError("shutdown() is being written")
