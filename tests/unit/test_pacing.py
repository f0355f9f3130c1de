"""The worker's pacing around fire times (worker.pacing)."""

from __future__ import annotations

import asyncio
import time

from worker.pacing import ArmingGate, ReleaseBatches, ReleaseWindows


def test_no_window_when_nothing_is_due() -> None:
    w = ReleaseWindows(ahead=0.1, settle=0.15)
    assert w.busy_for(time.time()) == 0.0


def test_a_run_due_soon_opens_a_window_until_released() -> None:
    w = ReleaseWindows(ahead=0.1, settle=0.15)
    now = time.time()
    w.expect(now + 0.05)
    w.expect(now + 0.05)
    assert w.busy_for(now) > 0
    w.released(now + 0.05, started=False)  # cancelled: no release to settle after
    assert w.busy_for(now) > 0, "one of the two is still to release"
    w.released(now + 0.05)
    assert w.busy_for(now) > 0, "released commands are still starting"
    assert w.busy_for(now + 0.5) == 0.0


def test_a_run_due_later_does_not_open_a_window_yet() -> None:
    w = ReleaseWindows(ahead=0.1, settle=0.15)
    now = 1000.0
    w.expect(now + 30)
    assert w.busy_for(now) == 0.0
    assert w.busy_for(now + 29.95) > 0


def test_the_window_stays_open_while_released_commands_start() -> None:
    w = ReleaseWindows(ahead=0.1, settle=0.15)
    fire_at = time.time()
    w.expect(fire_at)
    w.released(fire_at)
    assert 0 < w.busy_for(time.time()) <= 0.15
    assert w.busy_for(time.time() + 0.2) == 0.0


async def test_quiet_waits_for_the_release_then_returns() -> None:
    w = ReleaseWindows(ahead=0.1, settle=0.05, max_defer=5)
    fire_at = time.time()
    w.expect(fire_at)
    quiet = asyncio.create_task(w.quiet())
    await asyncio.sleep(0.1)
    assert not quiet.done(), "a run due now is not released yet"
    w.released(fire_at)
    await asyncio.wait_for(quiet, 2)


async def test_quiet_gives_up_after_max_defer() -> None:
    w = ReleaseWindows(ahead=0.1, settle=0.05, max_defer=0.2)
    w.expect(time.time())  # never released
    await asyncio.wait_for(w.quiet(), 2)


async def test_arming_gate_serves_the_soonest_first() -> None:
    gate = ArmingGate(1)
    await gate.acquire(100.0)  # the only slot is taken
    order: list[float] = []

    async def arm(fire_at: float) -> None:
        await gate.acquire(fire_at)
        order.append(fire_at)
        gate.release()

    waiters = [asyncio.create_task(arm(t)) for t in (300.0, 200.0, 250.0)]
    await asyncio.sleep(0)  # let all three queue
    gate.release()
    await asyncio.wait_for(asyncio.gather(*waiters), 2)
    assert order == [200.0, 250.0, 300.0]


def test_disabled_windows_never_hold_work() -> None:
    w = ReleaseWindows(enabled=False)
    fire_at = time.time()
    w.expect(fire_at)
    assert w.busy_for(fire_at) == 0.0
    w.released(fire_at)
    assert w.busy_for(fire_at) == 0.0


class Recorded:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    async def release(self) -> None:
        self.log.append(f"release {self.name}")


async def test_runs_due_together_are_released_in_one_pass_never_early() -> None:
    batches, log = ReleaseBatches(), list[str]()
    when = time.time() + 0.05
    never = asyncio.Event()

    async def run(name: str) -> None:
        at = await batches.release_at(when, Recorded(name, log), never)
        assert at is not None and at >= when
        log.append(f"after {name}")

    await asyncio.gather(*(run(n) for n in "abc"))
    assert log[:3] == ["release a", "release b", "release c"], "all released before any goes on"


async def test_a_run_interrupted_before_its_instant_is_never_released() -> None:
    batches, log = ReleaseBatches(), list[str]()
    when = time.time() + 0.2
    stop, never = asyncio.Event(), asyncio.Event()
    withdrawn = asyncio.ensure_future(batches.release_at(when, Recorded("x", log), stop))
    kept = asyncio.ensure_future(batches.release_at(when, Recorded("y", log), never))
    await asyncio.sleep(0.01)
    stop.set()
    assert await withdrawn is None
    assert await kept is not None and log == ["release y"]


async def test_an_overdue_run_is_released_at_once_unless_interrupted() -> None:
    batches, log = ReleaseBatches(), list[str]()
    when = time.time() - 1
    at = await batches.release_at(when, Recorded("late", log), asyncio.Event())
    assert at is not None and at >= when and log == ["release late"]
    stopped = asyncio.Event()
    stopped.set()
    assert await batches.release_at(when, Recorded("withdrawn", log), stopped) is None
    assert log == ["release late"]
