"""A live run's output is copied to the log store every interval, but not
once its process has exited: the final copy follows at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cronfleet.aio import within
from cronfleet.logstore import LocalLogStore
from worker.live_output import LiveOutput
from worker.runtime import BeginsAtRelease, RunOutcome, RunSpec


class Store(LocalLogStore):
    def __init__(self, root: Path) -> None:
        super().__init__(root, "http://logs")
        self.puts: list[str] = []
        self.put_once = asyncio.Event()

    async def put(self, key: str, path: Path, *, final: bool = False) -> str:
        self.puts.append(key)
        self.put_once.set()
        return await super().put(key, path, final=final)


class Armed(BeginsAtRelease):
    """A run that ends when the test says; ``ended``: its process has exited."""

    cold: bool | None = False
    container_id = ""

    def __init__(self, ended: bool) -> None:
        self.ended = ended
        self.looked = asyncio.Event()  # the publisher asked whether it had ended
        self.end = asyncio.Event()

    @property
    def output_ended(self) -> bool:
        self.looked.set()
        return self.ended

    async def release(self) -> None: ...
    async def kill(self, reason: str) -> None: ...
    async def snapshot(self) -> None: ...

    async def read_checkpoint(self) -> bytes | None:
        return None

    async def wait(self) -> RunOutcome:
        await self.end.wait()
        return RunOutcome("succeeded", 0)


async def _watch(tmp_path: Path, ended: bool) -> list[str]:
    store = Store(tmp_path / "logs")
    spool = tmp_path / "7-1" / "output.log"
    spool.parent.mkdir()
    spool.write_text("so far\n")
    armed = Armed(ended)
    spec = RunSpec(execution_id=7, job_id="job", attempt=1, spool=spool)
    watching = asyncio.create_task(LiveOutput(store, 0.01).watch(spec, armed, "k", lambda _: None))
    await within((armed.looked if ended else store.put_once).wait(), 5)
    armed.end.set()
    await within(watching, 5)
    return store.puts


async def test_a_live_runs_output_is_copied(tmp_path: Path) -> None:
    assert await _watch(tmp_path, ended=False) == ["k"]


async def test_an_exited_runs_output_is_not_copied_live(tmp_path: Path) -> None:
    assert await _watch(tmp_path, ended=True) == []


async def test_a_live_run_that_printed_nothing_is_not_copied(tmp_path: Path) -> None:
    """No empty log is stored while it runs (nor after: worker.lifecycle)."""
    store = Store(tmp_path / "logs")
    spool = tmp_path / "7-1" / "output.log"
    spool.parent.mkdir()
    spool.touch()
    armed = Armed(False)
    spec = RunSpec(execution_id=7, job_id="job", attempt=1, spool=spool)
    watching = asyncio.create_task(LiveOutput(store, 0.01).watch(spec, armed, "k", lambda _: None))
    for _ in range(3):  # the publisher's loop looked, so its pass before went through the copy's check
        await within(armed.looked.wait(), 5)
        armed.looked.clear()
    armed.end.set()
    await within(watching, 5)
    assert store.puts == []


async def test_runs_watched_by_one_sweep_publish_each_from_its_own_interval(tmp_path: Path) -> None:
    """One timer for all runs: a run that ends early publishes nothing; the
    others each publish once an interval old, whenever they began."""
    store = Store(tmp_path / "logs")
    live = LiveOutput(store, 0.2)
    specs, armed, watching = [], [], []
    for i in range(3):
        spool = tmp_path / f"{i}-1" / "output.log"
        spool.parent.mkdir()
        spool.write_text(f"run {i}\n")
        specs.append(RunSpec(execution_id=i, job_id="job", attempt=1, spool=spool))
        armed.append(Armed(False))
        watching.append(asyncio.create_task(live.watch(specs[i], armed[i], f"k{i}", lambda _: None)))
        await asyncio.sleep(0)  # each begins watching in turn
        if i == 0:
            armed[0].end.set()  # ends at once: never an interval old
            await within(watching[0], 5)
    await within(store.put_once.wait(), 5)
    await within(asyncio.gather(*(a.looked.wait() for a in armed[1:])), 5)
    for a in armed[1:]:
        a.end.set()
    await within(asyncio.gather(*watching[1:]), 5)
    assert sorted(set(store.puts)) == ["k1", "k2"]
    assert live._due == {}  # every run ended: nothing left for the sweep
