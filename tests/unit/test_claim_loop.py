"""The claim loop's pace: every claim interval while there is work, every
idle interval once claims keep finding nothing, looking further ahead then
so that no fire is claimed later than while busy."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from cronfleet.config import Settings
from scheduler import claim_loop
from scheduler.claim import Claimed
from scheduler.claim_loop import IDLE_AFTER, ClaimLoop
from scheduler.dispatch import DispatchQueue
from scheduler.ownership import ShardOwnership
from scheduler.streams import WorkerStream, WorkerStreams

SETTINGS = Settings(claim_interval=0.2, claim_idle_interval=1.0, lookahead_process=3.0)


class Dispatcher:
    """What the loop asks of the dispatcher, doing nothing."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()

    async def dispatch(self) -> None:
        return None

    def choose_workers(self, candidates: list[Any]) -> list[str]:
        return [""] * len(candidates)

    def send_assigned(self, assigned: list[Any]) -> int:
        return 0


class Postgres:
    """The claim statements, answered from a script: how many fires are due."""

    def __init__(self) -> None:
        self.due: list[int] = []  # per claim: fires it finds (0 when the list runs out)
        self.horizons: list[datetime] = []

    async def claim_due_fires(self, db: Any, *, horizon: datetime, **_: Any) -> Claimed:
        self.horizons.append(horizon)
        return Claimed([], [], self.due.pop(0) if self.due else 0)

    async def claim_pending(self, db: Any, **_: Any) -> list[Any]:
        return []


@pytest.fixture
def postgres(monkeypatch: pytest.MonkeyPatch) -> Postgres:
    fake = Postgres()
    monkeypatch.setattr(claim_loop, "claim_due_fires", fake.claim_due_fires)
    monkeypatch.setattr(claim_loop, "claim_pending", fake.claim_pending)
    return fake


def make_loop(streams: WorkerStreams | None = None, queue: DispatchQueue | None = None) -> ClaimLoop:
    ownership = ShardOwnership("s1", on_change=lambda: None)
    ownership.apply({"epoch": 1, "owners": {"s1": [0, 1]}})
    nobody: Any = None
    loop = ClaimLoop(
        SETTINGS,
        nobody,
        ownership,
        queue or DispatchQueue(),
        Dispatcher(),  # type: ignore[arg-type]
        streams or WorkerStreams(heartbeat_interval=1.0),
        asyncio.Event(),
        asyncio.Event(),
    )
    loop._fence_checked = float("inf")  # no fence look (it reads Postgres)
    return loop


def ahead(horizon: datetime) -> float:
    """How far past now (and the lookahead) a claim looked, in seconds."""
    return (horizon - datetime.now(UTC)).total_seconds() - SETTINGS.lookahead_process


async def test_claims_that_keep_finding_nothing_slow_to_the_idle_interval(postgres: Postgres) -> None:
    loop = make_loop()
    for _ in range(IDLE_AFTER - 1):
        await loop.claim_once()
        assert loop.interval() == SETTINGS.claim_interval, "busy until IDLE_AFTER claims found nothing"
    await loop.claim_once()
    assert loop.interval() == SETTINGS.claim_idle_interval
    await loop.claim_once()
    assert loop.interval() == SETTINGS.claim_idle_interval, "and stays idle while nothing is due"


async def test_an_idle_claim_looks_further_ahead_by_what_its_interval_adds(postgres: Postgres) -> None:
    loop = make_loop()
    for _ in range(IDLE_AFTER + 2):
        await loop.claim_once()
    looked = [ahead(h) for h in postgres.horizons]
    # Busy claims look one lookahead ahead; the claim after which the loop
    # waits an idle interval, and every idle one, 0.8 s further: a fire is
    # never claimed less than (lookahead - claim interval) before its time.
    assert all(abs(x) < 0.05 for x in looked[: IDLE_AFTER - 1]), looked
    assert all(abs(x - 0.8) < 0.05 for x in looked[IDLE_AFTER - 1 :]), looked


async def test_a_claim_that_finds_a_fire_brings_back_the_claim_interval(postgres: Postgres) -> None:
    loop = make_loop()
    postgres.due = [0] * (IDLE_AFTER + 1) + [3]
    for _ in range(IDLE_AFTER + 1):
        await loop.claim_once()
    assert loop.interval() == SETTINGS.claim_idle_interval
    await loop.claim_once()  # finds 3 fires due (skipped ones count too: something was due)
    assert loop.interval() == SETTINGS.claim_interval
    await loop.claim_once()
    assert ahead(postgres.horizons[-1]) == pytest.approx(0.0, abs=0.05), "busy again: the usual lookahead"


async def test_workers_with_no_room_are_not_idleness(postgres: Postgres) -> None:
    """Fires wait in Postgres while the workers are full; the claim comes
    back at the claim interval, not an idle one, to take them once room frees."""
    streams = WorkerStreams(heartbeat_interval=1.0)
    streams.add(WorkerStream("w", credits=0))  # heard from, no room
    loop = make_loop(streams)
    loop.empty_claims = IDLE_AFTER + 3
    assert await loop.claim_once() == 0
    assert postgres.horizons == [], "nothing claimed: no room"
    assert loop.interval() == SETTINGS.claim_interval
