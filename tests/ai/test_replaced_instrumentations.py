"""The official GenAI instrumentations that otel-obs replaces are named as they are installed."""

from __future__ import annotations

from importlib.metadata import entry_points

from otel_obs import setup
from otel_obs.ai.instrument import REPLACED_INSTRUMENTATIONS


def test_setup_and_the_ai_module_replace_the_same_instrumentations() -> None:
    assert setup._AI_REPLACED == REPLACED_INSTRUMENTATIONS


def test_each_replaced_name_is_an_installed_instrumentor_entry_point() -> None:
    installed = {entry.name for entry in entry_points(group="opentelemetry_instrumentor")}

    assert set(REPLACED_INSTRUMENTATIONS) <= installed
