"""While a run lives: its output so far stored where the finished log will
go (``logs?follow=true``), and its checkpoint reported when it changes, so a
run lost with its worker resumes from it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

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

    @property
    def interval(self) -> float:
        return self.live_log_interval if self.live_log_interval > 0 else CHECKPOINT_EVERY

    async def watch(
        self, spec: RunSpec, armed: ArmedRun, log_key: str, on_checkpoint: Callable[[bytes], None]
    ) -> RunOutcome:
        """Wait for the run's end, publishing from one interval after now."""
        done = asyncio.Event()
        publisher: asyncio.Task[None] | None = None

        def publish() -> None:
            nonlocal publisher
            publisher = asyncio.create_task(self._publish(spec, armed, log_key, on_checkpoint, done))

        # Most runs end before their first live report is due: a timer until
        # then, not a task of its own per run (a fifth of a short run's cost).
        timer = asyncio.get_running_loop().call_later(self.interval, publish)
        try:
            return await armed.wait()
        finally:
            timer.cancel()
            # Let an upload in flight finish, so it cannot land after (and
            # over) the final log.
            done.set()
            if publisher is not None:
                await publisher

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
