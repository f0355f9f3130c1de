"""The no-op runtime: runs nothing, succeeds at release. For throughput
benchmarks: the whole per-fire path but the run itself."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from cronfleet.v1 import dispatch_pb2
from worker.runtime import ArmedRun, BeginsAtRelease, RunOutcome, RunSpec


class NoopRuntime:
    """Runs nothing; succeeds at release. For throughput benchmarks."""

    name = "noop"
    paced = False
    follow_up_uses_engine = False
    arm_slots: int | None = None
    writes_files = False

    async def arm(self, spec: RunSpec) -> ArmedRun:
        return _NoopRun()  # no output, so nothing to spool or upload

    async def keep_warm(self, stop: asyncio.Event, quiet: Callable[[], Awaitable[None]]) -> None:
        return None

    def expect(self, source: str, profiles: list[dispatch_pb2.ProfileCount]) -> None:
        return None

    async def close(self) -> None:
        return None


class _NoopRun(BeginsAtRelease):
    cold: bool | None = None
    container_id = ""
    output_ended = False  # it writes none

    async def release(self) -> None:
        return None

    async def read_checkpoint(self) -> bytes | None:
        return None

    async def snapshot(self) -> None:
        return None

    async def wait(self) -> RunOutcome:
        return RunOutcome("succeeded", 0)

    async def kill(self, reason: str) -> None:
        return None
