"""The traffic driver's schedule and progress bar."""

from __future__ import annotations

import io
import itertools
import random

from otel_obs.demo import workload
from otel_obs.demo.workload import MIX, SEED_CAMPAIGNS, Call, Progress, schedule


def test_schedule_creates_campaigns_then_calls_every_kind_once_then_draws_by_weight() -> None:
    kinds = [kind for kind, _ in itertools.islice(schedule(random.Random(1)), 3000)]

    first_pass = SEED_CAMPAIGNS + len(MIX)
    assert kinds[:SEED_CAMPAIGNS] == ["create campaign"] * SEED_CAMPAIGNS
    assert kinds[SEED_CAMPAIGNS:first_pass] == [kind for kind, _, _ in MIX]
    drawn = kinds[first_pass:]
    weights = {kind: weight for kind, weight, _ in MIX}
    share = drawn.count("get campaign") / len(drawn)
    assert abs(share - weights["get campaign"] / sum(weights.values())) < 0.03


def test_the_same_seed_gives_the_same_schedule() -> None:
    first = [k for k, _ in itertools.islice(schedule(random.Random(7)), 200)]
    again = [k for k, _ in itertools.islice(schedule(random.Random(7)), 200)]

    assert first == again


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_on_a_terminal_and_stays_silent_elsewhere() -> None:
    calls = [Call("x", 200, 0.01), Call("x", 500, 0.01), Call("x", 0, 0.01)]
    terminal, pipe = _Terminal(), io.StringIO()

    Progress(10, terminal).update(5.0, calls)
    Progress(10, pipe).update(5.0, calls)
    Progress(10, _Terminal(), enabled=False).update(5.0, calls)

    assert terminal.getvalue().startswith("\r  [" + "#" * 15 + "-" * 15 + "]")
    assert "3 requests" in terminal.getvalue() and "2 5xx" in terminal.getvalue()
    assert pipe.getvalue() == ""


def test_describe_counts_requests_by_kind_and_status() -> None:
    result = workload.WorkloadResult(
        started=0.0,
        ended=2.0,
        calls=[Call("a", 200, 0.1), Call("a", 200, 0.1), Call("a", 503, 0.1), Call("b", 0, 0.1)],
        transport_errors=1,
    )

    described = workload.describe(result)

    assert described["by_kind"] == {"a": {"200": 2, "503": 1}, "b": {"0": 1}}
    assert (described["requests"], described["transport_errors"], described["seconds"]) == (
        4,
        1,
        2.0,
    )
