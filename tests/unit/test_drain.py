"""cronfleet.aio.Drain: items handled in batches by one task at a time; and
Background, which holds the tasks it starts until they end."""

from __future__ import annotations

import asyncio

from cronfleet.aio import Background, Drain, within


async def test_items_gathered_meanwhile_go_in_the_next_batch_by_the_same_task() -> None:
    batches: list[list[int]] = []
    tasks: list[asyncio.Task[None]] = []
    gate = asyncio.Event()

    async def handle(items: list[int]) -> None:
        batches.append(items)
        await gate.wait()

    drain: Drain[int] = Drain(handle, lambda work: tasks.append(asyncio.create_task(work)))
    drain.add(1)
    await asyncio.sleep(0)  # the task takes [1] and waits in handle
    drain.add(2)
    drain.add(3)
    gate.set()
    await asyncio.gather(*tasks)
    assert batches == [[1], [2, 3]] and len(tasks) == 1
    drain.add(4)  # drained: a new task for the next item
    await asyncio.gather(*tasks)
    assert batches[-1] == [4] and len(tasks) == 2


async def test_background_holds_its_tasks_and_settle_waits_for_them() -> None:
    background = Background()
    done: list[str] = []
    gate = asyncio.Event()

    async def work(name: str) -> None:
        await gate.wait()
        done.append(name)

    async def fails() -> None:
        raise RuntimeError("its own failure")

    for name in ("a", "b"):
        background.spawn(work(name))
    background.spawn(fails())
    settling = asyncio.create_task(background.settle())
    await asyncio.sleep(0.01)
    assert not settling.done(), "two tasks still wait"
    gate.set()
    await within(settling, 5)
    assert sorted(done) == ["a", "b"]
