"""The warm pool's bookkeeping, with fake containers (no engine)."""

from __future__ import annotations

import asyncio

from tests.helpers import assert_eventually
from worker.pool import ContainerPool, Pooled, Profile

DEFAULT = Profile("runner", 1.0, 256, 128)
OTHER = Profile("registry.example.com/app:1", 1.0, 256, 128)


class FakeEngine:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.made: list[Pooled] = []
        self.removed: list[Pooled] = []
        self.at_once = 0
        self.most_at_once = 0

    async def create(self, profile: Profile) -> Pooled:
        self.at_once += 1
        self.most_at_once = max(self.most_at_once, self.at_once)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.at_once -= 1
        pooled = Pooled(container=f"c{len(self.made)}", sock=None, profile=profile)  # type: ignore[arg-type]
        self.made.append(pooled)
        return pooled

    async def remove(self, pooled: Pooled) -> None:
        self.removed.append(pooled)


async def quiet() -> None:
    """No fire instant to keep out of."""


async def test_a_profile_whose_image_is_not_here_waits_until_it_is() -> None:
    engine, here = FakeEngine(), {"runner"}
    pool = ContainerPool(engine.create, engine.remove, DEFAULT, 1, 8, ready=lambda p: p.image in here)
    pool.expect({OTHER: 2})
    stop = asyncio.Event()
    refill = asyncio.ensure_future(pool.run(stop, quiet))
    try:

        async def default_warm() -> bool:
            return pool.idle(DEFAULT) == 1

        await assert_eventually(default_warm, timeout=5, what="the default profile warm")
        await asyncio.sleep(0.1)
        assert pool.idle(OTHER) == 0, "its image is not here: nothing made"
        here.add(OTHER.image)  # pulled
        pool.poke()

        async def other_warm() -> bool:
            return pool.idle(OTHER) == 2

        await assert_eventually(other_warm, timeout=5, what="the pulled profile warm")
    finally:
        stop.set()
        await refill


async def test_a_container_being_made_when_the_worker_stops_is_removed_at_close() -> None:
    engine = FakeEngine(delay=0.2)
    pool = ContainerPool(engine.create, engine.remove, DEFAULT, 1, 8)
    refill = asyncio.ensure_future(pool.run(asyncio.Event(), quiet))
    await asyncio.sleep(0.05)  # mid-create
    refill.cancel()
    await asyncio.gather(refill, return_exceptions=True)
    await pool.close()
    assert len(engine.made) == 1 and engine.removed == engine.made


async def test_the_pool_makes_a_few_containers_at_once_and_no_more_than_its_targets() -> None:
    engine = FakeEngine(delay=0.05)
    pool = ContainerPool(engine.create, engine.remove, DEFAULT, 2, 8, parallel=3)
    pool.expect({OTHER: 5})
    stop = asyncio.Event()
    refill = asyncio.ensure_future(pool.run(stop, quiet))
    try:

        async def warm() -> bool:
            return pool.idle(DEFAULT) == 2 and pool.idle(OTHER) == 5

        await assert_eventually(warm, timeout=5, what="both profiles at their targets")
        assert engine.most_at_once == 3, "three made at once, never more"
        pool.take(OTHER)

        async def refilled() -> bool:
            return pool.idle(OTHER) == 5

        await assert_eventually(refilled, timeout=5, what="the taken one made again")
        await asyncio.sleep(0.2)  # any surplus creation would have landed by now
        assert len(engine.made) == 8, "the targets and the one taken: nothing beyond"
    finally:
        stop.set()
        await refill


async def test_a_container_made_after_the_refill_was_cancelled_is_still_removed_at_close() -> None:
    # The worker cancels the refill, waits for it, then closes the pool: a
    # creation that lands in between was dropped and left in the engine.
    engine = FakeEngine(delay=0.2)
    pool = ContainerPool(engine.create, engine.remove, DEFAULT, 3, 8)
    refill = asyncio.ensure_future(pool.run(asyncio.Event(), quiet))

    async def being_made() -> bool:
        return engine.at_once == 3

    await assert_eventually(being_made, timeout=5, what="three containers being made")
    refill.cancel()
    await asyncio.gather(refill, return_exceptions=True)

    async def landed() -> bool:
        return len(engine.made) == 3

    await assert_eventually(landed, timeout=5, what="the creations landed after the cancel")
    await pool.close()
    assert engine.removed == engine.made
