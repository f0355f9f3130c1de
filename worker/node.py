"""A worker node: its rooms wired together, and the role's ``run``.

- connection: one stream per scheduler (hello, events, credit, heartbeats)
- outbox: events kept until acknowledged, resent after a reconnect
- lifecycle: each run's life (arm, wait, release, watch, upload, report)
- fencing: runs killed by the worker itself when it is cut off
- runtime, process_runtime, docker_runtime, http_runtime, pacing: how runs are prepared and released
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aetcd
import structlog

from cronfleet import etcd, metrics, rpc
from cronfleet.config import Settings
from cronfleet.logstore import LogStore, S3LogStore, open_log_store
from cronfleet.outbound import OutboundPolicy
from cronfleet.v1 import dispatch_pb2
from worker.connection import Connections, Hello, StreamHandlers
from worker.fencing import SelfFence
from worker.http_runtime import HttpRuntime
from worker.lifecycle import Runs
from worker.outbox import Outbox
from worker.runtime import Runtime, open_runtime

log = structlog.get_logger()
MEMBERS_POLL = 0.5
STOP_GRACE = 10.0
DRAIN_SECONDS = 3.0
LAST_DRAIN_SECONDS = 1.0


class Worker:
    def __init__(self, settings: Settings, runtime: Runtime, logs: LogStore, client: aetcd.Client) -> None:
        self.settings = settings
        self.id = settings.worker_id
        self.runtime = runtime
        self.client = client
        self.keys = etcd.Keys(settings.etcd_prefix)
        hello = Hello(
            self.id,
            settings.capacity,
            runtime.name,
            settings.heartbeat_interval,
            holding=lambda: set(self.runs.active) | self.outbox.execution_ids(),
        )
        self.connections = Connections(
            hello,
            StreamHandlers(
                on_message=self._on_message,
                on_up=lambda _address: self.outbox.stream_up(),
                on_down=lambda address: self.outbox.stream_down(address),
                running=lambda: len(self.runs),
                room=self._room,
                leaving=lambda: self.runs.stopping,
            ),
            rpc.InternalTls.from_settings(settings),
        )
        self.outbox = Outbox(self.connections.pick)
        self.http = HttpRuntime(OutboundPolicy.from_settings(settings))
        self.runs = Runs(
            runtime,
            logs,
            self.outbox,
            http=self.http,
            spool_root=Path(settings.state_dir).absolute() / "spool" / self.id,
            arm_concurrency=settings.arm_concurrency,
            live_log_interval=settings.live_log_interval,
            give_back=self.connections.run_ended,
        )
        self.fence = SelfFence(self.id, self.runs, self.connections.any_live, settings.self_fence_seconds)
        metrics.CAPACITY.set(settings.capacity)
        metrics.RUNNING.set_function(lambda: self.runs.count(started=True))
        metrics.ARMED.set_function(lambda: self.runs.count(started=False))
        pool = getattr(runtime, "pool", None)
        if pool is not None:
            metrics.POOL_IDLE.set_function(pool.idle)

    def _on_message(self, address: str, msg: dispatch_pb2.SchedulerMessage) -> None:
        kind = msg.WhichOneof("kind")
        if kind == "assignments":
            for assignment in msg.assignments.assignments:
                self.connections.run_taken(address)  # its scheduler spent a credit on it
                if not self.runs.start(assignment, origin=address):
                    self.connections.run_ended(address)  # a resend, or returned: the slot is free
        elif kind == "ack":
            self.outbox.acknowledged(list(msg.ack.seqs))
        elif kind == "cancel":
            self.runs.cancel(list(msg.cancel.execution_ids))
            self.runs.withdraw(list(msg.cancel.withdrawn_ids))
        elif kind == "expect":
            self.runtime.expect(address, list(msg.expect.profiles))

    def _room(self) -> int | None:
        """This worker's room for runs that each need a fresh container, one
        scheduler's share: the warm pool, the cold starts made at once, and
        the runs held not yet started (so that a scheduler counting what it
        handed over knows what is left). None without a pool: credit alone."""
        pool = getattr(self.runtime, "pool", None)
        if pool is None:
            return None
        total: int = pool.idle() + self.settings.arm_concurrency + self.runs.count(started=False)
        return -(-total // max(1, len(self.connections.live())))

    async def run(self, stop: asyncio.Event) -> None:
        log.info(
            "worker_started", worker_id=self.id, runtime=self.runtime.name, capacity=self.settings.capacity
        )
        await self.runs.report_recovered()
        # A first burst's run folders, made while the worker joins (a thread:
        # up to a thousand mkdirs), not before it.
        make_spares = getattr(self.runtime, "make_spare_folders", None)
        folders = (
            asyncio.create_task(asyncio.to_thread(make_spares, self.runs.spool_root, self.settings.capacity))
            if make_spares is not None
            else None
        )
        keep_warm = asyncio.create_task(
            self.runtime.keep_warm(stop, self.runs.windows.quiet), name="keep-warm"
        )
        # The worker stays a member until its runs have ended: leaving sooner
        # lets the coordinator declare them lost and run them elsewhere while
        # a run that takes its grace to die is still alive here.
        leave = asyncio.Event()
        membership = asyncio.create_task(self._membership(leave), name="membership")
        tasks = [
            membership,
            asyncio.create_task(self.fence.run(stop), name="self-fence"),
            asyncio.create_task(self.connections.lend_idle_credit(), name="lend-credit"),
            keep_warm,
        ]
        try:
            await stop.wait()
        finally:
            await self._stop_gracefully(keep_warm, folders, leave, membership)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.connections.close()
            await self.http.close()

    async def _stop_gracefully(
        self,
        keep_warm: asyncio.Task[None],
        folders: asyncio.Task[None] | None,
        leave: asyncio.Event,
        membership: asyncio.Task[None],
    ) -> None:
        """Graceful stop: the schedulers send nothing more; runs not yet
        started are returned whole (assigned again elsewhere, as the same
        attempt); runs in progress are stopped and reported lost (run again
        elsewhere, by their delivery), so nothing is left running behind a
        worker that is gone."""
        self.runs.stopping = True
        self.connections.say_leaving()
        began, runs = time.monotonic(), len(self.runs)
        await self.runs.kill_all("lost")
        await self.runs.wait_all(STOP_GRACE)
        runs_ended = time.monotonic() - began
        keep_warm.cancel()  # no refill while the pool is emptied
        await asyncio.wait((keep_warm,))
        if folders is not None:
            await asyncio.wait((folders,))  # all made before the runtime removes them
        # The containers go while the reports drain: removing fifty takes
        # the engine seconds, and the supervisor's grace is short.
        for failed in await asyncio.gather(
            self.outbox.drain(DRAIN_SECONDS), self.runtime.close(), return_exceptions=True
        ):
            if isinstance(failed, Exception):
                log.warning("worker_stop_step_failed", error=repr(failed))
        leave.set()  # the member key goes with its lease
        await asyncio.wait((membership,), timeout=DRAIN_SECONDS)
        # An assignment already on its way when a scheduler heard we are
        # leaving arrives meanwhile and is returned: wait for that word too.
        await self.outbox.drain(LAST_DRAIN_SECONDS)
        log.info(
            "worker_stopped",
            runs=runs,
            runs_left=len(self.runs),
            runs_ended_s=round(runs_ended, 2),
            seconds=round(time.monotonic() - began, 2),
        )

    async def _membership(self, leave: asyncio.Event) -> None:
        """Stay registered until ``leave``; keep one connection per live scheduler."""

        async def follow_schedulers(session: etcd.Session) -> None:
            said_stopping = False
            while True:
                if self.runs.stopping and not said_stopping:  # for the cluster view
                    await session.put(self.keys.member("workers", self.id), member())
                    said_stopping = True
                schedulers = await etcd.read_members(self.client, self.keys, "schedulers")
                self.connections.sync({s["address"] for s in schedulers.values()}, leave)
                await asyncio.sleep(MEMBERS_POLL)

        async def fence_if_lost(session: etcd.Session) -> None:
            if session.lost.is_set():
                # Our lease is gone: the coordinator will call our runs lost
                # and retry them elsewhere, so they must not go on.
                await self.fence.fence("etcd session lost")

        def member() -> dict[str, object]:
            return {
                "id": self.id,
                "capacity": self.settings.capacity,
                "runtime": self.runtime.name,
                "metrics": self.settings.metrics_addr,
                "stopping": self.runs.stopping,
            }

        await etcd.stay_registered(
            self.client,
            self.keys,
            "workers",
            self.id,
            member,
            ttl=self.settings.member_ttl,
            stop=leave,
            while_registered=follow_schedulers,
            after_session=fence_if_lost,
        )


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """The worker role, until ``stop`` is set."""
    runtime = open_runtime(settings)
    logs = open_log_store(settings)
    try:
        if isinstance(logs, S3LogStore):
            await logs.ensure_bucket()
        async with etcd.connected(settings.etcd_endpoints) as client:
            await Worker(settings, runtime, logs, client).run(stop)
    finally:
        await logs.close()
