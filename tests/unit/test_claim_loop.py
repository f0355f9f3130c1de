"""The claim loop's pace: every claim interval while there is work; once
claims keep finding nothing, when the soonest fire comes within the
lookahead (at most an idle interval away), never looking further ahead."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
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
LOOKAHEAD = timedelta(seconds=SETTINGS.lookahead_process)


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
    """The claim statements and next_due, answered from a script."""

    def __init__(self) -> None:
        self.due: list[int] = []  # per claim: fires it finds (0 when the list runs out)
        self.ahead: list[float] = []  # how far past now + lookahead each claim looked (s)
        self.next_due: datetime | None = None
        self.next_due_asked = 0

    async def claim_due_fires(self, db: Any, *, horizon: datetime, **_: Any) -> Claimed:
        self.ahead.append((horizon - LOOKAHEAD - datetime.now(UTC)).total_seconds())
        return Claimed([], [], self.due.pop(0) if self.due else 0)

    async def claim_pending(self, db: Any, **_: Any) -> list[Any]:
        return []

    async def fetch_one(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        assert name == "next_due" and (params["scheduler_id"], params["epoch"]) == ("s1", 1)
        # Asked only as far as the next idle claim could need.
        reach = LOOKAHEAD + timedelta(seconds=SETTINGS.claim_idle_interval)
        assert abs((params["until"] - datetime.now(UTC) - reach).total_seconds()) < 0.05
        self.next_due_asked += 1
        return {"at": self.next_due if self.next_due is None or self.next_due < params["until"] else None}


@pytest.fixture
def postgres(monkeypatch: pytest.MonkeyPatch) -> Postgres:
    fake = Postgres()
    monkeypatch.setattr(claim_loop, "claim_due_fires", fake.claim_due_fires)
    monkeypatch.setattr(claim_loop, "claim_pending", fake.claim_pending)
    return fake


def make_loop(postgres: Postgres, streams: WorkerStreams | None = None) -> ClaimLoop:
    ownership = ShardOwnership("s1", on_change=lambda: None)
    ownership.apply({"epoch": 1, "owners": {"s1": [0, 1]}})
    loop = ClaimLoop(
        SETTINGS,
        postgres,  # type: ignore[arg-type]
        ownership,
        DispatchQueue(),
        Dispatcher(),  # type: ignore[arg-type]
        streams or WorkerStreams(heartbeat_interval=1.0),
        asyncio.Event(),
        asyncio.Event(),
    )
    loop._fence_checked = float("inf")  # no fence look (it reads Postgres)
    return loop


async def idle_loop(postgres: Postgres) -> ClaimLoop:
    loop = make_loop(postgres)
    for _ in range(IDLE_AFTER):
        await loop.claim_once()
    return loop


async def test_claims_keep_the_claim_interval_until_idle_after_empty_ones(postgres: Postgres) -> None:
    loop = make_loop(postgres)
    for _ in range(IDLE_AFTER - 1):
        await loop.claim_once()
        assert await loop.until_next_claim() == SETTINGS.claim_interval
    assert postgres.next_due_asked == 0, "busy: no question asked"
    await loop.claim_once()
    assert await loop.until_next_claim() == SETTINGS.claim_idle_interval, "nothing due anywhere"
    assert postgres.next_due_asked == 1


async def test_an_idle_loop_claims_when_the_soonest_fire_comes_within_its_lookahead(
    postgres: Postgres,
) -> None:
    loop = await idle_loop(postgres)
    postgres.next_due = datetime.now(UTC) + LOOKAHEAD + timedelta(seconds=0.6)
    assert await loop.until_next_claim() == pytest.approx(0.6, abs=0.05)
    postgres.next_due = datetime.now(UTC) + LOOKAHEAD + timedelta(seconds=30)
    assert await loop.until_next_claim() == SETTINGS.claim_idle_interval, "at most the idle interval"
    postgres.next_due = datetime.now(UTC) - timedelta(seconds=5)  # an attempt waiting for room
    assert await loop.until_next_claim() == SETTINGS.claim_interval, "at least the claim interval"
    asked = postgres.next_due_asked
    for _ in range(IDLE_AFTER - 1):  # busy again for a while: not asked on every claim
        await loop.claim_once()
        assert await loop.until_next_claim() == SETTINGS.claim_interval
    assert postgres.next_due_asked == asked


async def test_every_claim_looks_one_lookahead_ahead_busy_or_idle(postgres: Postgres) -> None:
    loop = await idle_loop(postgres)
    await loop.claim_once()
    assert len(postgres.ahead) == IDLE_AFTER + 1
    assert all(abs(x) < 0.05 for x in postgres.ahead), postgres.ahead


async def test_a_claim_that_finds_a_fire_brings_back_the_claim_interval(postgres: Postgres) -> None:
    loop = await idle_loop(postgres)
    postgres.due = [3]  # fires due (skipped ones count too: something was due)
    await loop.claim_once()
    assert await loop.until_next_claim() == SETTINGS.claim_interval


async def test_workers_with_no_room_are_not_idleness(postgres: Postgres) -> None:
    """Fires wait in Postgres while the workers are full; the claim comes
    back at the claim interval, not an idle one, to take them once room frees."""
    streams = WorkerStreams(heartbeat_interval=1.0)
    streams.add(WorkerStream("w", credits=0))  # heard from, no room
    loop = make_loop(postgres, streams)
    loop.empty_claims = IDLE_AFTER + 3
    assert await loop.claim_once() == 0
    assert postgres.ahead == [], "nothing claimed: no room"
    assert await loop.until_next_claim() == SETTINGS.claim_interval
