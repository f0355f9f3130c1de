"""One role in this process: logging, signals, then the role's ``run``."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import NoReturn

import structlog

from cronfleet import probes
from cronfleet.config import Settings
from cronfleet.errors import CronfleetError
from cronfleet.logging import configure_logging

RoleRun = Callable[[Settings, asyncio.Event], Awaitable[None]]


def role_run(role: str) -> RoleRun:
    """The role package's ``run``, imported now: a worker process has no use
    for the gateway's web framework (each role imports in 1-2 s here)."""
    if role == "coordinator":
        import coordinator

        return coordinator.run
    if role == "scheduler":
        import scheduler

        return scheduler.run
    if role == "worker":
        import worker

        return worker.run
    if role == "gateway":
        import gateway

        return gateway.run
    raise ValueError(f"no role {role!r}: coordinator, scheduler, worker or gateway")


def main(role: str) -> None:
    """``cronfleet <role>``: settings from CRONFLEET_* variables; a bad one,
    or a service the role cannot use, is one line on stderr and exit code 2."""
    try:
        settings = Settings.from_env().with_defaults_for(role)
    except ValueError as exc:  # names the setting
        _fail(str(exc), 2)
    except KeyboardInterrupt:  # before the role's own handler is there
        _fail("interrupted", 130)
    try:
        run_role(role, settings)
    except CronfleetError as exc:
        _fail(str(exc), 2)
    except KeyboardInterrupt:
        _fail("interrupted", 130)


def _fail(message: str, code: int) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def run_role(role: str, settings: Settings) -> None:
    """Run ``role`` until SIGTERM or SIGINT, which only ask: the role drains.
    Every role but the gateway (which has its HTTP port) serves its metrics,
    /healthz and /readyz on ``metrics_addr``, and registers the address it got."""
    run = role_run(role)
    health = probes.Probes()
    if role != "gateway":
        settings = dataclasses.replace(settings, metrics_addr=probes.serve(settings.metrics_addr, health))

    async def main() -> None:
        configure_logging(settings.log_level, settings.log_format)
        _tune_gc()
        # Every line this process logs says which member said it (the tasks
        # the role starts inherit the context).
        structlog.contextvars.bind_contextvars(role=role, **_member(role, settings))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def ask_to_stop() -> None:
            health.stop()
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, ask_to_stop)
        beating = asyncio.create_task(_beat(health))
        try:
            await run(settings, stop)
        finally:
            beating.cancel()

    asyncio.run(main())


# Collections of the youngest generation every this many allocations (the
# interpreter's default is 700). Under load the roles allocate a few dozen
# tracked objects per fire (tasks, futures, rows, events), nearly all freed
# by reference counting; with the default, a no-op bench of 14 s had each
# worker spend 1.8 s and each scheduler 1.2 s collecting (gc.callbacks),
# mostly full collections walking the ~116k objects every role holds from
# its start. 50,000 made memory creep (cyclic garbage waits longer); at
# 10,000 a 3-minute soak stays as flat as with the default.
GC_YOUNG_THRESHOLD = 10_000


def _tune_gc() -> None:
    """What the process holds once started (modules, classes, settings) is
    never garbage: frozen out of every collection, and collections made
    rarer. Cycles are still collected, later."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


async def _beat(health: probes.Probes) -> None:
    """Tell /healthz the loop turns; a loop blocked for long stops this."""
    while True:
        health.beat()
        await asyncio.sleep(1)


def _member(role: str, settings: Settings) -> dict[str, str]:
    member_id = {
        "coordinator": settings.coordinator_id,
        "scheduler": settings.scheduler_id,
        "worker": settings.worker_id,
    }.get(role, "")
    return {f"{role}_id": member_id} if member_id else {}
