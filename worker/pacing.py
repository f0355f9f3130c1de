"""When the worker asks its runtime for work, so that runs start on time.

Three habits, all about the moments around a fire time:

- ArmingGate: at most a few runs arm at once, the one due soonest first.
- ReleaseBatches: runs due at the same instant are released in one pass, by
  one timer, before any of them does its follow-up work (each run waking on
  its own timer and doing its bookkeeping between releases made the last of
  fifty released 26 ms late).
- ReleaseWindows: follow-up work (arming later runs, waiting on, reading and
  removing finished containers) keeps out of the instants at which runs are
  being released. Fifty armed containers released together start within
  about 30 ms when the engine has nothing else to do; with the first ones'
  teardown competing for the engine and the two cores, the last started
  hundreds of milliseconds late.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import time
from typing import Protocol

from cronfleet.aio import wait_for_event


class ArmingGate:
    """At most ``slots`` runs arm at once, the one due soonest first.

    Arming a container costs the engine about 0.4 s; a run due now must not
    queue behind runs due in half a minute.
    """

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiting: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def acquire(self, fire_at: float) -> None:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (fire_at, next(self._order), turn))
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # we were handed the slot as we were cancelled
            raise

    def release(self) -> None:
        while self._waiting:
            _, _, turn = heapq.heappop(self._waiting)
            if not turn.done():
                turn.set_result(None)
                return
        self._free += 1


class ReleaseBatches:
    """Releases the runs due at one instant together: one timer per instant;
    when it fires, every run still waiting is released in one pass (a release
    is a pipe or socket write in every runtime), then each run's task goes on."""

    def __init__(self) -> None:
        self._due: dict[float, list[tuple[Releasable, asyncio.Future[float]]]] = {}
        self._timers: dict[float, asyncio.Task[None]] = {}

    async def release_at(self, when: float, run: Releasable, interrupt: asyncio.Event) -> float | None:
        """Release ``run`` at ``when`` by the wall clock (never before), with the
        others due then; the time it was released, or None if ``interrupt``
        was set first (then it never is)."""
        if interrupt.is_set():
            return None
        if when not in self._due and when <= time.time():
            # Overdue, and no batch waits for this instant: released now (a
            # future, a task and a wait cost more than the release itself).
            await run.release()
            return time.time()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[float] = loop.create_future()
        self._due.setdefault(when, []).append((run, done))
        if when not in self._timers:
            self._timers[when] = loop.create_task(self._release_all(when))
        stopper = asyncio.ensure_future(interrupt.wait())
        try:
            await asyncio.wait((done, stopper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if done.cancel():  # interrupted before the instant: taken out of the batch
            return None
        return done.result()

    async def _release_all(self, when: float) -> None:
        try:
            await sleep_until(when)
        finally:
            self._timers.pop(when, None)
            batch = self._due.pop(when, [])
        for run, done in batch:
            if done.done():
                continue  # withdrawn
            try:
                await run.release()  # never suspends: the batch goes out in one pass
            except Exception as exc:  # its own failure, reported by its task
                done.set_exception(exc)
            else:
                done.set_result(time.time())


class Releasable(Protocol):
    async def release(self) -> None: ...


async def sleep_until(when: float, interrupt: asyncio.Event | None = None) -> None:
    """Sleep until the wall clock reads ``when`` (never return early), or
    until ``interrupt`` is set."""
    while interrupt is None or not interrupt.is_set():
        remaining = when - time.time()
        if remaining <= 0:
            return
        if remaining <= 0.002:
            await asyncio.sleep(0)
        elif interrupt is None:
            await asyncio.sleep(remaining)
        else:
            await wait_for_event(interrupt, remaining)


class ReleaseWindows:
    """Knows the fire times that still have runs to release, and holds
    deferrable work until none is near.

    A window opens ``ahead`` seconds before a fire time with unreleased runs
    and closes ``settle`` seconds after the last release (the released
    commands are still starting then). Work waits at most ``max_defer``
    seconds, so a worker with fires every instant still gets its work done.
    Disabled (``enabled=False``), every window is closed: runtimes whose
    release does not compete for an engine need none.
    """

    def __init__(
        self, ahead: float = 0.1, settle: float = 0.15, max_defer: float = 2.0, enabled: bool = True
    ) -> None:
        self.ahead = ahead
        self.settle = settle
        self.max_defer = max_defer
        self.enabled = enabled
        self._unreleased: collections.Counter[float] = collections.Counter()
        self._soonest: list[float] = []  # heap of fire times, some perhaps released
        self._last_release = 0.0

    def expect(self, fire_at: float) -> None:
        """A run due at ``fire_at`` is on its way."""
        if not self.enabled:
            return
        if not self._unreleased[fire_at]:
            heapq.heappush(self._soonest, fire_at)
        self._unreleased[fire_at] += 1

    def released(self, fire_at: float, started: bool = True) -> None:
        """That run was released (``started``), or never will be (cancelled,
        failed to arm)."""
        if not self.enabled:
            return
        self._unreleased[fire_at] -= 1
        if self._unreleased[fire_at] <= 0:
            del self._unreleased[fire_at]
        if started:
            self._last_release = time.time()

    def busy_for(self, now: float) -> float:
        """Seconds until no window is open at ``now`` (0 when none is), as
        far as is known now: a run still unreleased keeps it open."""
        if not self.enabled:
            return 0.0
        while self._soonest and self._soonest[0] not in self._unreleased:
            heapq.heappop(self._soonest)
        wait = self._last_release + self.settle - now
        if self._soonest and self._soonest[0] - self.ahead <= now:
            wait = max(wait, self.settle)  # due (or overdue): open until released
        return max(0.0, wait)

    async def quiet(self, most: float | None = None) -> None:
        """Return when no window is open, or after ``most`` (``max_defer``) seconds.

        Waiters poll rather than being woken at each release: fifty of them
        woken fifty times would be the very load the window keeps away.
        """
        give_up = time.monotonic() + (self.max_defer if most is None else most)
        while (wait := self.busy_for(time.time())) > 0:
            left = give_up - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(wait, left))
