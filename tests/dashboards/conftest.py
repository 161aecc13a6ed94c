"""The session's real stack with workload data, shared by the dashboard data tests."""

from __future__ import annotations

from collections.abc import Iterator

import live_stack
import pytest


@pytest.fixture(scope="session")
def live_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_stack.LiveData]:
    yield from live_stack.live_data(tmp_path_factory.mktemp("dashboards-stack"))
