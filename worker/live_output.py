"""While a run lives: its output so far stored where the finished log will
go (``logs?follow=true``), and its checkpoint reported when it changes, so a
run lost with its worker resumes from it. Once it has ended: its output
stored for good."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import structlog

from cronfleet.aio import wait_for_event
from cronfleet.errors import CronfleetError
from cronfleet.logstore import LogStore
from worker.runtime import ArmedRun, RunOutcome, RunSpec

log = structlog.get_logger()
# How often a live run's checkpoint is read when live logs are off.
CHECKPOINT_EVERY = 1.0


class LiveOutput:
    def __init__(self, logs: LogStore, live_log_interval: float) -> None:
        """``live_log_interval`` <= 0: no live log, checkpoints only."""
        self.logs = logs
        self.live_log_interval = live_log_interval
        # Runs not yet one interval old, oldest first (the interval is one
        # for all): most runs end before their first live report is due, so
        # one timer sweeps them all, not a timer and an event per run (3-4 us
        # of a no-op run's ~50 us of worker CPU).
        self._due: dict[_Watched, float] = {}
        self._sweep_timer: asyncio.TimerHandle | None = None

    def key_for(self, spec: RunSpec) -> str:
        return self.logs.key_for(spec.owner_id, spec.job_id, spec.execution_id, spec.attempt)

    async def store(self, key: str, spool: Path, size: int | None = None) -> tuple[str, int]:
        """A finished run's output stored, unless empty (logstore: a missing log
        reads as empty; the empty spool stays for the run's folder to be kept
        with it); where, and its size."""
        size = os.stat(spool).st_size if size is None else size
        return (await self.logs.put(key, spool, final=True) if size else self.logs.location(key)), size

    @property
    def interval(self) -> float:
        return self.live_log_interval if self.live_log_interval > 0 else CHECKPOINT_EVERY

    async def watch(
        self, spec: RunSpec, armed: ArmedRun, log_key: str, on_checkpoint: Callable[[bytes], None]
    ) -> RunOutcome:
        """Wait for the run's end, publishing from one interval after now."""
        watched = _Watched(functools.partial(self._publish, spec, armed, log_key, on_checkpoint))
        loop = asyncio.get_running_loop()
        self._due[watched] = loop.time() + self.interval
        if self._sweep_timer is None:
            self._sweep_timer = loop.call_later(self.interval, self._sweep)
        try:
            return await armed.wait()
        finally:
            self._due.pop(watched, None)
            # Let an upload in flight finish, so it cannot land after (and
            # over) the final log. (Most runs end before they publish at all.)
            if watched.publishing:
                await watched.stop()

    def _sweep(self) -> None:
        """Start publishing for the runs an interval old; wake for the next."""
        loop = asyncio.get_running_loop()
        self._sweep_timer, now = None, loop.time()
        while self._due:
            watched, due = next(iter(self._due.items()))
            if due > now:
                self._sweep_timer = loop.call_at(due, self._sweep)
                return
            del self._due[watched]
            watched.start()

    async def _publish(
        self,
        spec: RunSpec,
        armed: ArmedRun,
        log_key: str,
        on_checkpoint: Callable[[bytes], None],
        done: asyncio.Event,
    ) -> None:
        # Nothing printed, nothing copied (a silent run stores no log at all).
        path, published, checkpoint = spec.spool_path, 0, spec.checkpoint
        while not done.is_set() and not armed.output_ended:  # else its final copy follows
            try:
                if self.live_log_interval > 0:
                    await armed.snapshot()
                    size = path.stat().st_size if path.exists() else 0
                    if size != published:
                        await self.logs.put(log_key, path)
                        published = size
                latest = await armed.read_checkpoint()
                if latest is not None and latest != checkpoint:
                    checkpoint = latest
                    on_checkpoint(latest)
            except (CronfleetError, OSError) as exc:
                log.debug("live_report_failed", execution_id=spec.execution_id, error=str(exc))
            await wait_for_event(done, self.interval)


class _Watched:
    """One run's live publishing, started once it is an interval old."""

    def __init__(self, publish: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
        self._publish = publish
        self._done: asyncio.Event | None = None
        self._publisher: asyncio.Task[None] | None = None

    @property
    def publishing(self) -> bool:
        return self._publisher is not None

    def start(self) -> None:
        self._done = asyncio.Event()
        self._publisher = asyncio.create_task(self._publish(self._done))

    async def stop(self) -> None:
        if self._publisher is not None and self._done is not None:
            self._done.set()
            await self._publisher
