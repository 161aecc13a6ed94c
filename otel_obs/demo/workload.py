"""The traffic driver: a bounded, repeatable mix of ad-platform requests over HTTP.

A first pass calls every kind of request once, so even a short run shows each of them;
then workers pick requests at random by weight until the time or the request budget runs
out. Campaign owners' emails, phones and cards are made up, and the driver keeps them so
the demo can prove that none of them left a process unmasked.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx

from otel_obs.business import PLATFORMS, TIERS

FIRST_NAMES = ("maria", "james", "aiko", "lena", "omar", "sofia", "noah", "priya")
LAST_NAMES = ("garcia", "smith", "tanaka", "muller", "haddad", "rossi", "brown", "patel")
DOMAINS = ("example.com", "mail.example.co.uk", "example.org")
PHONES = ("+44 20 7946 0{:03d}", "+1 415 555 0{:03d}", "+33 1 99 00 0{:03d}")
# Test card numbers from the card networks' documentation: valid checksums, never real.
CARDS = ("4111 1111 1111 1111", "5555-5555-5555-4444", "4012 8888 8888 1881")
NAMES = (
    "Spring Sale",
    "Summer Launch",
    "Back to School",
    "Black Friday",
    "New Flavour",
    "Loyalty Week",
    "App Install Push",
    "City Pop-up",
)
BUDGETS = (40.0, 120.0, 300.0, 850.0, 2500.0, 6000.0)


@dataclass
class Call:
    """One request the driver made and what came back."""

    kind: str
    status: int
    seconds: float


@dataclass
class WorkloadResult:
    started: float
    ended: float
    calls: list[Call] = field(default_factory=list)
    campaigns: list[str] = field(default_factory=list)
    video_tasks: list[str] = field(default_factory=list)
    personal_data: set[str] = field(default_factory=set)
    transport_errors: int = 0

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    def by_kind(self) -> dict[str, Counter[int]]:
        out: dict[str, Counter[int]] = {}
        for call in self.calls:
            out.setdefault(call.kind, Counter())[call.status] += 1
        return out


class State:
    """What the workers share: known campaigns, enqueued tasks, personal data used."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.campaigns: list[str] = []
        self.video_tasks: list[str] = []
        self.personal_data: set[str] = set()
        self.lock = threading.Lock()

    def campaign(self, rng: random.Random) -> str:
        with self.lock:
            return rng.choice(self.campaigns) if self.campaigns else "cmp-00001"


Op = Callable[[httpx.Client, random.Random, State], httpx.Response]


def _create(client: httpx.Client, rng: random.Random, state: State) -> httpx.Response:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    email = f"{first}.{last}+ads@{rng.choice(DOMAINS)}"
    phone = rng.choice(PHONES).format(rng.randrange(1000))
    body = {
        "name": rng.choice(NAMES),
        "platform": rng.choice(PLATFORMS),
        "tier": rng.choice(TIERS),
        "daily_budget": rng.choice(BUDGETS),
        "owner_email": email,
        "owner_phone": phone,
    }
    with state.lock:
        state.personal_data.update((email, phone))
    response = client.post("/campaigns", json=body)
    if response.status_code == 201:
        with state.lock:
            state.campaigns.append(response.json()["id"])
    return response


def _get(client: httpx.Client, rng: random.Random, state: State) -> httpx.Response:
    return client.get(f"/campaigns/{state.campaign(rng)}")


def _get_missing(client: httpx.Client, rng: random.Random, state: State) -> httpx.Response:
    return client.get(f"/campaigns/cmp-9{rng.randrange(10000):04d}")


def _list(client: httpx.Client, rng: random.Random, state: State) -> httpx.Response:
    params = {"platform": rng.choice(PLATFORMS)} if rng.random() < 0.5 else {}
    return client.get("/campaigns", params=params)


def _copy(
    provider: str, api: str = "chat", stream: bool = False, simulate: str | None = None
) -> Op:
    def op(client: httpx.Client, rng: random.Random, state: State) -> httpx.Response:
        body = {"provider": provider, "api": api, "stream": stream, "simulate": simulate}
        return client.post(f"/campaigns/{state.campaign(rng)}/ad-copy", json=body)

    return op


def _publish(client: httpx.Client, rng: random.Random, state: State) -> httpx.Response:
    card = rng.choice(CARDS)
    with state.lock:
        state.personal_data.add(card)
    body = {
        "platforms": rng.sample(PLATFORMS, rng.randint(1, 3)),
        "ads_per_platform": rng.randint(1, 4),
        "billing_card": card,
    }
    return client.post(f"/campaigns/{state.campaign(rng)}/ads", json=body)


def _predict(client: httpx.Client, rng: random.Random, state: State) -> httpx.Response:
    return client.post(f"/campaigns/{state.campaign(rng)}/roas-prediction")


def _video(simulate: str | None = None) -> Op:
    def op(client: httpx.Client, rng: random.Random, state: State) -> httpx.Response:
        response = client.post(
            f"/campaigns/{state.campaign(rng)}/videos", json={"simulate": simulate}
        )
        if response.status_code == 202:
            with state.lock:
                state.video_tasks.append(response.json()["task_id"])
        return response

    return op


def _report(day: str) -> Op:
    def op(client: httpx.Client, rng: random.Random, state: State) -> httpx.Response:
        return client.get("/reports/daily", params={"day": day})

    return op


# (kind, weight, operation). Kinds name what the request does, not its route.
MIX: tuple[tuple[str, int, Op], ...] = (
    ("create campaign", 8, _create),
    ("get campaign", 14, _get),
    ("get unknown campaign", 2, _get_missing),
    ("list campaigns", 6, _list),
    ("ad copy: openai chat", 5, _copy("openai")),
    ("ad copy: openai chat stream", 3, _copy("openai", stream=True)),
    ("ad copy: openai responses", 3, _copy("openai", api="responses")),
    ("ad copy: openai responses stream", 2, _copy("openai", api="responses", stream=True)),
    ("ad copy: anthropic (cached prompt)", 5, _copy("anthropic")),
    ("ad copy: anthropic stream", 3, _copy("anthropic", stream=True)),
    ("ad copy: gemini", 4, _copy("gemini")),
    ("ad copy: gemini stream", 2, _copy("gemini", stream=True)),
    ("ad copy: LLM answers 429", 2, _copy("openai", simulate="rate_limit")),
    ("ad copy: LLM answers 500", 1, _copy("anthropic", simulate="server_error")),
    ("ad copy: slow LLM", 1, _copy("gemini", simulate="slow")),
    ("publish ads", 7, _publish),
    ("predict ROAS", 10, _predict),
    ("generate video", 4, _video()),
    ("generate video (retried)", 2, _video("render_busy")),
    ("generate video (fails)", 1, _video("render_error")),
    ("daily report", 2, _report("2025-03-14")),
    ("daily report (bad date)", 1, _report("2024-02-30")),
)
SEED_CAMPAIGNS = 3


def schedule(rng: random.Random) -> Iterator[tuple[str, Op]]:
    """Campaigns first, then every kind once, then kinds drawn by weight, forever."""
    for _ in range(SEED_CAMPAIGNS):
        yield MIX[0][0], MIX[0][2]
    for kind, _, op in MIX:
        yield kind, op
    kinds = [(kind, op) for kind, _, op in MIX]
    weights = [weight for _, weight, _ in MIX]
    while True:
        yield rng.choices(kinds, weights)[0]


class Progress:
    """A one-line text progress bar on a terminal; silent elsewhere."""

    def __init__(self, seconds: float, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.seconds = seconds
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()

    def update(self, elapsed: float, calls: list[Call]) -> None:
        if not self.enabled:
            return
        width = 30
        done = min(elapsed / self.seconds, 1.0) if self.seconds else 1.0
        errors = sum(1 for c in calls if c.status >= 500 or c.status == 0)
        bar = "#" * int(done * width) + "-" * (width - int(done * width))
        clock = f"{elapsed:5.1f}/{self.seconds:.0f} s"
        self.stream.write(f"\r  [{bar}] {clock}  {len(calls):5d} requests  {errors:4d} 5xx")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


class Workload:
    """Drives ``base_url`` with ``concurrency`` workers for ``seconds`` or ``max_requests``."""

    def __init__(
        self,
        base_url: str,
        seconds: float,
        *,
        max_requests: int | None = None,
        concurrency: int = 4,
        seed: int = 7,
        think_time: tuple[float, float] = (0.05, 0.15),
    ) -> None:
        self.base_url = base_url
        self.seconds = seconds
        self.max_requests = max_requests if max_requests is not None else max(50, int(seconds * 50))
        self.concurrency = concurrency
        self.think_time = think_time
        self._rng = random.Random(seed)
        self._state = State(self._rng)
        self._schedule = schedule(self._rng)
        self._schedule_lock = threading.Lock()
        self._calls: list[Call] = []
        self._transport_errors = 0
        self._deadline = 0.0

    def _next(self) -> tuple[str, Op] | None:
        with self._schedule_lock:
            if len(self._calls) >= self.max_requests or time.monotonic() >= self._deadline:
                return None
            return next(self._schedule)

    def _worker(self, index: int) -> None:
        rng = random.Random(self._rng.random() + index)
        with httpx.Client(base_url=self.base_url, timeout=15.0) as client:
            while (job := self._next()) is not None:
                kind, op = job
                started = time.monotonic()
                try:
                    status = op(client, rng, self._state).status_code
                except httpx.HTTPError:
                    status = 0
                    with self._schedule_lock:
                        self._transport_errors += 1
                with self._schedule_lock:
                    self._calls.append(Call(kind, status, time.monotonic() - started))
                time.sleep(rng.uniform(*self.think_time))

    def run(self, progress: Progress | None = None) -> WorkloadResult:
        started = time.time()
        self._deadline = time.monotonic() + self.seconds
        # The seed campaigns exist before the others start asking for them.
        self._seed()
        threads = [
            threading.Thread(target=self._worker, args=(i,), name=f"workload-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        for thread in threads:
            thread.start()
        began = time.monotonic()
        while any(t.is_alive() for t in threads):
            if progress:
                progress.update(time.monotonic() - began, self._snapshot())
            time.sleep(0.2)
        if progress:
            progress.update(time.monotonic() - began, self._snapshot())
            progress.close()
        return self._result(started)

    def _seed(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=15.0) as client:
            for _ in range(SEED_CAMPAIGNS):
                kind, op = next(self._schedule)
                started = time.monotonic()
                status = op(client, self._rng, self._state).status_code
                self._calls.append(Call(kind, status, time.monotonic() - started))

    def _snapshot(self) -> list[Call]:
        with self._schedule_lock:
            return list(self._calls)

    def _result(self, started: float) -> WorkloadResult:
        state = self._state
        with state.lock:
            return WorkloadResult(
                started=started,
                ended=time.time(),
                calls=self._snapshot(),
                campaigns=list(state.campaigns),
                video_tasks=list(state.video_tasks),
                personal_data=set(state.personal_data),
                transport_errors=self._transport_errors,
            )


def describe(result: WorkloadResult) -> dict[str, Any]:
    """What the driver sent, by kind of request and status, for the summary."""
    return {
        "seconds": round(result.seconds, 3),
        "requests": len(result.calls),
        "transport_errors": result.transport_errors,
        "campaigns_created": len(result.campaigns),
        "videos_requested": len(result.video_tasks),
        "by_kind": {
            kind: {str(status): count for status, count in sorted(statuses.items())}
            for kind, statuses in sorted(result.by_kind().items())
        },
    }
