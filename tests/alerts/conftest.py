"""Fixtures of the alerting tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alert_servers import Webhook


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with Webhook() as sink:
        yield sink
