"""A worker's graceful stop kills its runs at once, not one after another:
each kill is an engine call or two, and fifty of them in a queue spent the
supervisor's grace (a stopped worker left its containers behind)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cronfleet.aio import within
from cronfleet.logstore import LocalLogStore
from worker.lifecycle import Run, Runs
from worker.noop_runtime import NoopRuntime
from worker.outbox import Outbox
from worker.runtime import BeginsAtRelease, RunOutcome, RunSpec


class SlowKill(BeginsAtRelease):
    """An armed run whose kill takes as long as the engine lets it: here,
    until every run of the worker is being killed."""

    cold: bool | None = False
    container_id = ""
    output_ended = False

    def __init__(self, killing: list[str], everyone: asyncio.Event, n: int) -> None:
        self.killing = killing
        self.everyone = everyone
        self.n = n

    async def release(self) -> None: ...

    async def wait(self) -> RunOutcome:
        return RunOutcome(status="cancelled", exit_code=None)

    async def kill(self, reason: str) -> None:
        self.killing.append(reason)
        if len(self.killing) == self.n:
            self.everyone.set()
        await self.everyone.wait()

    async def snapshot(self) -> None: ...

    async def read_checkpoint(self) -> bytes | None:
        return None


async def test_kill_all_kills_every_run_at_once(tmp_path: Path) -> None:
    runs = Runs(
        NoopRuntime(),
        LocalLogStore(tmp_path / "logs", "http://logs"),
        Outbox(lambda _: None),
        http=NoopRuntime(),
        spool_root=tmp_path / "spool",
        arm_concurrency=4,
        live_log_interval=0,
        give_back=lambda _: None,
    )
    killing: list[str] = []
    everyone = asyncio.Event()
    for n in range(1, 51):
        spec = RunSpec(execution_id=n, job_id="job", attempt=1, spool=tmp_path / f"{n}.log")
        runs.active[n] = Run(spec, fire_at=0.0, origin="s", armed=SlowKill(killing, everyone, 50))
    # One after another, the first kill would wait for the fiftieth for ever.
    await within(runs.kill_all("cancelled"), 5)
    assert killing == ["cancelled"] * 50
    assert all(r.cancelled.is_set() and r.cancel_reason == "cancelled" for r in runs.active.values())
