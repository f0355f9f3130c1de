"""Worker: one stream to every scheduler; arms each assignment, releases it
at fire_at by its own clock (never before), reports what happened, and keeps
every event until a scheduler acknowledges it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import aetcd
import grpc
import structlog
from google.protobuf.timestamp_pb2 import Timestamp

from cronfleet import etcd
from cronfleet.config import Settings
from cronfleet.errors import CronfleetError
from cronfleet.logstore import LogStore, S3LogStore, open_log_store
from cronfleet.v1 import dispatch_pb2, dispatch_pb2_grpc
from worker.pacing import ArmingGate, ReleaseWindows
from worker.runtime import ArmedRun, RunOutcome, RunRejected, RunSpec, Runtime, parse_step_results

log = structlog.get_logger()
EVENTS_PER_MESSAGE = 500
# A run due sooner than this arms at once; later ones first let any release
# in progress finish (see worker.pacing).
ARM_WITHOUT_DEFERRING = 5.0


def _ts(epoch_seconds: float) -> Timestamp:
    seconds = int(epoch_seconds)
    return Timestamp(seconds=seconds, nanos=int((epoch_seconds - seconds) * 1e9))


@dataclass
class Connection:
    """This worker's stream to one scheduler."""

    address: str
    live: bool = False
    task: asyncio.Task[None] | None = None
    # What to send next, coalesced: many events and credits share one
    # message, since one stream carries far more fires packed than one each.
    pending_events: list[dispatch_pb2.RunEvent] = field(default_factory=list)
    pending_credit: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def send_events(self, events: list[dispatch_pb2.RunEvent]) -> None:
        self.pending_events.extend(events)
        self.wake.set()

    def give_credit(self, slots: int) -> None:
        self.pending_credit += slots
        self.wake.set()


@dataclass
class Run:
    assignment: dispatch_pb2.Assignment
    origin: str
    armed: ArmedRun | None = None
    cancel_reason: str = ""
    task: asyncio.Task[None] | None = None
    # Set when the run is cancelled, so an armed run stops waiting for its time.
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)


class Worker:
    def __init__(self, settings: Settings, runtime: Runtime, logs: LogStore, client: aetcd.Client) -> None:
        self.settings = settings
        self.id = settings.worker_id
        self.runtime = runtime
        self.logs = logs
        self.client = client
        self.keys = etcd.Keys(settings.etcd_prefix)
        self.spool_root = Path(settings.state_dir).absolute() / "spool" / self.id
        self.connections: dict[str, Connection] = {}
        self.runs: dict[int, Run] = {}
        self._seq = itertools.count(1)
        # seq -> (event, address it was last sent on, or "" if not in flight)
        self.unacked: dict[int, tuple[dispatch_pb2.RunEvent, str]] = {}
        self._last_contact = time.monotonic()
        self._arming = ArmingGate(settings.arm_concurrency)
        self._windows = ReleaseWindows(enabled=runtime.paced)

    # ------------------------------------------------------------ lifecycle
    async def run(self, stop: asyncio.Event) -> None:
        log.info(
            "worker_started", worker_id=self.id, runtime=self.runtime.name, capacity=self.settings.capacity
        )
        await self._report_recovered()
        tasks = [
            asyncio.create_task(self._membership(stop), name="membership"),
            asyncio.create_task(self._self_fence(stop), name="self-fence"),
        ]
        try:
            await stop.wait()
        finally:
            # Graceful stop: runs in progress are stopped and reported, so
            # nothing is left running behind a worker that is gone.
            for run in list(self.runs.values()):
                await self._kill(run, "cancelled")
            runs = [r.task for r in self.runs.values() if r.task]
            if runs:
                await asyncio.wait(runs, timeout=10)
            await self._drain_events(timeout=3)
            for t in tasks:
                t.cancel()
            for conn in self.connections.values():
                if conn.task:
                    conn.task.cancel()
            await asyncio.gather(
                *tasks, *(c.task for c in self.connections.values() if c.task), return_exceptions=True
            )

    async def _membership(self, stop: asyncio.Event) -> None:
        """Stay registered; keep one connection per live scheduler."""
        while not stop.is_set():
            session = etcd.Session(self.client, self.settings.member_ttl)
            try:
                await session.start()
                await session.put(
                    self.keys.member("workers", self.id),
                    {"id": self.id, "capacity": self.settings.capacity, "runtime": self.runtime.name},
                )
                while not session.lost.is_set() and not stop.is_set():
                    schedulers = await etcd.read_members(self.client, self.keys, "schedulers")
                    self._sync_connections({s["address"] for s in schedulers.values()}, stop)
                    await _sleep_or(stop, 0.5)
                if session.lost.is_set():
                    # Our lease is gone: the coordinator will call our runs
                    # lost and retry them elsewhere, so they must not go on.
                    await self._fence("etcd session lost")
            except (TimeoutError, aetcd.exceptions.ClientError, OSError) as exc:
                log.warning("worker_membership_failed", error=str(exc))
                await _sleep_or(stop, 0.5)
            finally:
                with contextlib.suppress(Exception):
                    await session.close()

    def _sync_connections(self, addresses: set[str], stop: asyncio.Event) -> None:
        for address in addresses - set(self.connections):
            conn = Connection(address)
            conn.task = asyncio.create_task(self._connect_loop(conn, stop), name=f"conn-{address}")
            self.connections[address] = conn
        for address in set(self.connections) - addresses:
            conn = self.connections.pop(address)
            if conn.task:
                conn.task.cancel()

    async def _self_fence(self, stop: asyncio.Event) -> None:
        """Cut off from every scheduler too long: stop our runs ourselves."""
        while not stop.is_set():
            await _sleep_or(stop, 1.0)
            if any(c.live for c in self.connections.values()):
                self._last_contact = time.monotonic()
            elif self.runs and time.monotonic() - self._last_contact > self.settings.self_fence_seconds:
                await self._fence("no scheduler reachable")

    async def _fence(self, why: str) -> None:
        if self.runs:
            log.warning("worker_self_fenced", worker_id=self.id, runs=len(self.runs), reason=why)
        for run in list(self.runs.values()):
            await self._kill(run, "lost")

    # -------------------------------------------------------------- streams
    async def _connect_loop(self, conn: Connection, stop: asyncio.Event) -> None:
        backoff = 0.1
        while not stop.is_set():
            try:
                async with grpc.aio.insecure_channel(conn.address) as channel:
                    stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
                    call = stub.Connect()
                    await call.write(
                        dispatch_pb2.WorkerMessage(
                            hello=dispatch_pb2.Hello(
                                worker_id=self.id,
                                capacity=self.settings.capacity,
                                runtimes=[self.runtime.name],
                            )
                        )
                    )
                    conn.live = True
                    backoff = 0.1
                    self._resend_unacked()
                    writer = asyncio.create_task(self._write(conn, call))
                    try:
                        async for msg in call:
                            self._on_message(conn, msg)
                    finally:
                        writer.cancel()
            except grpc.aio.AioRpcError as exc:
                log.debug("scheduler_stream_closed", address=conn.address, code=str(exc.code()))
            finally:
                conn.live = False
                self._requeue_in_flight(conn.address)
            await _sleep_or(stop, backoff)
            backoff = min(backoff * 2, 1.0)

    async def _write(self, conn: Connection, call: grpc.aio.StreamStreamCall) -> None:
        heartbeat = self.settings.heartbeat_interval
        with contextlib.suppress(Exception):
            while True:
                try:
                    await asyncio.wait_for(conn.wake.wait(), heartbeat)
                except TimeoutError:
                    await call.write(
                        dispatch_pb2.WorkerMessage(
                            heartbeat=dispatch_pb2.Heartbeat(
                                running=len(self.runs), running_execution_ids=list(self.runs)
                            )
                        )
                    )
                    continue
                conn.wake.clear()
                await asyncio.sleep(0.001)  # let the runs finishing now join this message
                events, conn.pending_events = conn.pending_events, []
                credit, conn.pending_credit = conn.pending_credit, 0
                for i in range(0, len(events), EVENTS_PER_MESSAGE):
                    batch = dispatch_pb2.EventBatch(events=events[i : i + EVENTS_PER_MESSAGE])
                    await call.write(dispatch_pb2.WorkerMessage(events=batch))
                if credit:
                    await call.write(dispatch_pb2.WorkerMessage(credit=dispatch_pb2.Credit(slots=credit)))

    def _on_message(self, conn: Connection, msg: dispatch_pb2.SchedulerMessage) -> None:
        kind = msg.WhichOneof("kind")
        if kind == "assignments":
            for a in msg.assignments.assignments:
                if a.execution_id in self.runs:
                    continue  # a resend: idempotent by execution id
                run = Run(a, conn.address)
                self.runs[a.execution_id] = run
                run.task = asyncio.create_task(self._execute(run), name=f"run-{a.execution_id}")
        elif kind == "ack":
            for seq in msg.ack.seqs:
                self.unacked.pop(seq, None)
        elif kind == "cancel":
            for execution_id in msg.cancel.execution_ids:
                doomed = self.runs.get(execution_id)
                if doomed is not None:
                    asyncio.create_task(self._kill(doomed, "cancelled"))

    # -------------------------------------------------------------- events
    def _emit(self, origin: str, event: dispatch_pb2.RunEvent) -> None:
        event.seq = next(self._seq)
        self.unacked[event.seq] = (event, "")
        self._send_events([event.seq], prefer=origin)

    def _send_events(self, seqs: list[int], prefer: str) -> None:
        conn = self.connections.get(prefer)
        if conn is None or not conn.live:
            conn = next((c for c in self.connections.values() if c.live), None)
        if conn is None:
            return  # kept in unacked; sent when a stream comes up
        events = []
        for seq in seqs:
            event, _ = self.unacked[seq]
            self.unacked[seq] = (event, conn.address)
            events.append(event)
        conn.send_events(events)

    def _resend_unacked(self) -> None:
        idle = [seq for seq, (_, sent_on) in self.unacked.items() if not sent_on]
        if idle:
            self._send_events(idle, prefer="")

    def _requeue_in_flight(self, address: str) -> None:
        for seq, (event, sent_on) in list(self.unacked.items()):
            if sent_on == address:
                self.unacked[seq] = (event, "")
        self._resend_unacked()

    async def _drain_events(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.unacked and time.monotonic() < deadline:
            self._resend_unacked()
            await asyncio.sleep(0.05)

    # ----------------------------------------------------------------- runs
    async def _execute(self, run: Run) -> None:
        a = run.assignment
        fire_at = a.fire_at.seconds + a.fire_at.nanos / 1e9
        run_dir = self.spool_root / f"{a.execution_id}-{a.attempt}"
        spec = RunSpec(
            execution_id=a.execution_id,
            job_id=a.job_id,
            attempt=a.attempt,
            command=a.command,
            steps=[(s.name, s.run) for s in a.steps],
            env=dict(a.env),
            timeout_seconds=a.timeout_seconds or 3600,
            spool_path=run_dir / "output.log",
            owner_id=a.owner_id,
            image=a.image,
            cpus=a.resources.cpus,
            memory_mb=a.resources.memory_mb,
            pids=a.resources.pids,
        )
        started_at: float | None = None
        cold_start = False
        self._windows.expect(fire_at)
        pending_release = True
        try:
            if fire_at - time.time() > ARM_WITHOUT_DEFERRING:
                await self._windows.quiet()
            await self._arming.acquire(fire_at)
            try:
                if not run.cancel_reason:  # cancelled while queued: never armed
                    run.armed = await self.runtime.arm(spec)
            finally:
                self._arming.release()
            if run.armed is None:
                outcome = RunOutcome(run.cancel_reason, None, f"stopped: {run.cancel_reason}")
            else:
                # Armed after the fire time: this run starts cold (and late).
                cold_start = time.time() > fire_at
                await _sleep_until(fire_at, run.cancelled)
                if run.cancel_reason:
                    self._windows.released(fire_at, started=False)
                    pending_release = False
                    await run.armed.kill(run.cancel_reason)
                    outcome = await run.armed.wait()
                else:
                    await run.armed.release()
                    started_at = time.time()
                    self._windows.released(fire_at)
                    pending_release = False
                    # Reporting and waiting on this run can wait until the
                    # runs released with it have started.
                    await self._windows.quiet()
                    self._emit(
                        run.origin,
                        dispatch_pb2.RunEvent(
                            execution_id=a.execution_id,
                            kind=dispatch_pb2.EVENT_KIND_STARTED,
                            at=_ts(started_at),
                            lateness_ms=(started_at - fire_at) * 1000,
                        ),
                    )
                    done = asyncio.Event()
                    live_logs = asyncio.create_task(self._publish_output(run.armed, spec, a, done))
                    try:
                        outcome = await run.armed.wait()
                    finally:
                        # Let an upload in flight finish, so it cannot land
                        # after (and over) the final log.
                        done.set()
                        await live_logs
        except RunRejected as exc:
            outcome = RunOutcome("failed", None, str(exc))
        except Exception as exc:  # a runtime failure is the run's failure, not the worker's
            log.exception("run_failed_to_start", execution_id=a.execution_id)
            outcome = RunOutcome("failed", None, f"could not start: {exc}")
        if pending_release:
            self._windows.released(fire_at, started=False)
        log_url = ""
        if spec.spool_path.exists():
            try:
                key = self.logs.key_for(a.owner_id, a.job_id, a.execution_id, a.attempt)
                log_url = await self.logs.put(key, spec.spool_path)
            except (CronfleetError, OSError) as exc:
                outcome.error = (outcome.error + "; " if outcome.error else "") + f"log upload failed: {exc}"
        finished = self._finished_event(
            a.execution_id, outcome, log_url, spec.spool_path if a.steps else None
        )
        finished.cold_start = cold_start
        self._emit(run.origin, finished)
        self.runs.pop(a.execution_id, None)
        shutil.rmtree(run_dir, ignore_errors=True)
        origin = self.connections.get(run.origin)
        if origin is not None:
            origin.give_credit(1)
        log.info(
            "run_finished",
            execution_id=a.execution_id,
            job_id=a.job_id,
            status=outcome.status,
            exit_code=outcome.exit_code,
            lateness_ms=round((started_at - fire_at) * 1000, 2) if started_at else None,
        )

    async def _publish_output(
        self, armed: ArmedRun, spec: RunSpec, a: dispatch_pb2.Assignment, done: asyncio.Event
    ) -> None:
        """While the run lives, store its output so far where the finished log
        will go, so `logs?follow=true` can show it live."""
        interval = self.settings.live_log_interval
        if interval <= 0:
            return
        key = self.logs.key_for(a.owner_id, a.job_id, a.execution_id, a.attempt)
        published = -1
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), interval)
            if done.is_set():
                return
            try:
                await armed.snapshot()
                size = spec.spool_path.stat().st_size if spec.spool_path.exists() else 0
                if size != published:
                    await self.logs.put(key, spec.spool_path)
                    published = size
            except (CronfleetError, OSError) as exc:
                log.debug("live_log_failed", execution_id=a.execution_id, error=str(exc))

    @staticmethod
    def _finished_event(
        execution_id: int, outcome: RunOutcome, log_url: str, steps_log: Path | None
    ) -> dispatch_pb2.RunEvent:
        event = dispatch_pb2.RunEvent(
            execution_id=execution_id,
            kind=dispatch_pb2.EVENT_KIND_FINISHED,
            at=_ts(time.time()),
            status=outcome.status,
            error=outcome.error,
            log_url=log_url,
        )
        if outcome.exit_code is not None:
            event.exit_code = outcome.exit_code
        if steps_log is not None and steps_log.exists():
            text = steps_log.read_text(errors="replace")
            event.steps.extend(dispatch_pb2.StepResult(**r) for r in parse_step_results(text))  # type: ignore[arg-type]
            failed = [r for r in event.steps if r.exit_code != 0]
            if failed and not event.error:
                event.error = f"step {failed[0].name} exited {failed[0].exit_code}"
        return event

    async def _report_recovered(self) -> None:
        """Report what a previous life of this worker left in the runtime."""
        recover = getattr(self.runtime, "recover", None)
        if recover is None:
            return
        for r in await recover():
            log_url = ""
            with contextlib.suppress(CronfleetError, OSError):
                key = self.logs.key_for(r.owner_id, r.job_id, r.execution_id, r.attempt)
                log_url = await self.logs.put(key, r.spool_path)
            self._emit("", self._finished_event(r.execution_id, r.outcome, log_url, None))
            r.spool_path.unlink(missing_ok=True)

    async def _kill(self, run: Run, reason: str) -> None:
        run.cancel_reason = run.cancel_reason or reason
        run.cancelled.set()
        if run.armed is not None:
            await run.armed.kill(reason)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """The worker role, until ``stop`` is set."""
    from worker.runtime import open_runtime

    runtime = open_runtime(settings)
    logs = open_log_store(settings)
    try:
        if isinstance(logs, S3LogStore):
            await logs.ensure_bucket()
        async with etcd.connected(settings.etcd_endpoints) as client:
            await Worker(settings, runtime, logs, client).run(stop)
    finally:
        await logs.close()


async def _sleep_until(when: float, interrupt: asyncio.Event) -> None:
    """Sleep until the wall clock reads ``when`` (never return early), or
    until ``interrupt`` is set."""
    while not interrupt.is_set():
        remaining = when - time.time()
        if remaining <= 0:
            return
        if remaining > 0.002:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(interrupt.wait(), remaining)
        else:
            await asyncio.sleep(0)


async def _sleep_or(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
