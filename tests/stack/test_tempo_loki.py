"""Traces fetched back from Tempo by trace id, logs from Loki by trace_id.

Tempo and Loki are AGPL-licensed and otel-obs does not build them, so these two checks
need a stack where they run (collector/docker-compose.yaml). Natively the same data is
checked in the Collector's file export (test_masking.py, test_persistence.py) and the
Tempo/Loki configs are checked statically (test_configs.py).
"""

from __future__ import annotations

import pytest

NOT_HERE = (
    "Tempo/Loki are not built here: both are AGPL-licensed Go modules that this build does "
    "not fetch or compile, and no Tempo or Loki binary is installed, so there is no backend "
    "to query; run them with collector/docker-compose.yaml"
)


def test_trace_is_fetched_back_from_tempo_by_id():
    pytest.skip(NOT_HERE)


def test_logs_are_fetched_back_from_loki_by_trace_id():
    pytest.skip(NOT_HERE)
