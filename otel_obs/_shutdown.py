"""Stopping the providers within one time budget, whatever the Collector does.

Each provider stops in a thread of its own, traces and logs at once, so that a silent
traces endpoint does not eat the time the logs need. Metrics go last, so that they carry
the drops the others counted, with a reserve of the budget that nothing else can take.
Each step gets the time left until the shared deadline where the SDK accepts one; past the
deadline the caller stops the exporters, which ends their retries, and leaves the threads
behind (daemons: they never hold up the interpreter's exit).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from otel_obs._guard import guard

Step = Callable[[float], object]

# The share of the budget kept for the steps that go last: at most a second.
LAST_RESERVE = 1.0


def run_within(steps: dict[str, Step], budget: float, last: tuple[str, ...] = ()) -> list[str]:
    """Run the steps within ``budget`` seconds; return the names still running at the end.

    The steps run at once, each in a thread with the seconds left; those named in ``last``
    start when the others have finished, or when only their reserve of time is left.
    """
    deadline = time.monotonic() + max(0.0, budget)
    reserve = min(LAST_RESERVE, max(0.0, budget) / 3) if last else 0.0
    first = _start({n: s for n, s in steps.items() if n not in last}, deadline)
    _join(first, deadline - reserve)
    second = _start({n: s for n, s in steps.items() if n in last}, deadline)
    threads = {**first, **second}
    _join(threads, deadline)
    return [name for name, thread in threads.items() if thread.is_alive()]


def _start(steps: dict[str, Step], deadline: float) -> dict[str, threading.Thread]:
    threads = {
        name: threading.Thread(
            target=_run, args=(name, step, deadline), name=f"otel-obs-stop-{name}", daemon=True
        )
        for name, step in steps.items()
    }
    for thread in threads.values():
        thread.start()
    return threads


def _join(threads: dict[str, threading.Thread], until: float) -> None:
    for thread in threads.values():
        thread.join(max(0.0, until - time.monotonic()))


def _run(name: str, step: Step, deadline: float) -> None:
    with guard(f"stopping {name}"):
        step(max(0.0, deadline - time.monotonic()))
