"""Scheduler: claims due fires on its shards and streams them to workers.

Workers dial in (DispatchService.Connect). Each stream gets assignments as
its credit allows, packed several to a message; the events workers send back
are persisted in batches and acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aetcd
import grpc
import structlog
from google.protobuf.json_format import MessageToDict
from google.protobuf.timestamp_pb2 import Timestamp
from psycopg.types.json import Jsonb

from cronfleet import etcd
from cronfleet.config import Settings
from cronfleet.db import Database
from cronfleet.errors import CronfleetError
from cronfleet.v1 import dispatch_pb2, dispatch_pb2_grpc, jobs_pb2
from scheduler.claim import QueuedRun, claim_due_fires, claim_pending

log = structlog.get_logger()
MAX_QUEUED = 50_000
ASSIGNMENTS_PER_MESSAGE = 64


def _ts(dt: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(dt)
    return ts


def _dt(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


@dataclass
class WorkerStream:
    """One connected worker, as this scheduler sees it."""

    worker_id: str
    credits: int
    runtimes: tuple[str, ...] = ()
    outbox: asyncio.Queue[dispatch_pb2.SchedulerMessage] = field(default_factory=asyncio.Queue)


@dataclass
class PendingEvent:
    stream: WorkerStream
    event: dispatch_pb2.RunEvent


def assignment_for(run: QueuedRun) -> dispatch_pb2.Assignment:
    spec: dict[str, Any] = run.job["spec"]
    if isinstance(spec, str):
        spec = json.loads(spec)
    resources = spec.get("resources") or {}
    return dispatch_pb2.Assignment(
        execution_id=run.execution_id,
        job_id=str(run.job_id),
        owner_id=str(run.job.get("owner_id", "")),
        scheduled_at=_ts(run.scheduled_at),
        attempt=run.attempt,
        fire_at=_ts(run.fire_at),
        command=spec.get("command") or "",
        steps=[jobs_pb2.Step(name=s["name"], run=s["run"]) for s in spec.get("steps", [])],
        env=spec.get("env") or {},
        image=spec.get("image") or "",
        timeout_seconds=run.job["timeout_seconds"],
        priority=run.job["priority"],
        resources=jobs_pb2.Resources(
            cpus=resources.get("cpus", 0),
            memory_mb=resources.get("memory_mb", 0),
            pids=resources.get("pids", 0),
        ),
    )


class Scheduler(dispatch_pb2_grpc.DispatchServiceServicer):
    def __init__(self, settings: Settings, db: Database, client: aetcd.Client) -> None:
        self.settings = settings
        self.id = settings.scheduler_id
        self.db = db
        self.client = client
        self.keys = etcd.Keys(settings.etcd_prefix)
        self.address = ""
        self.shards: frozenset[int] = frozenset()
        self.epoch = 0
        self.streams: dict[str, WorkerStream] = {}
        self.queue: list[QueuedRun] = []
        self.queued_ids: set[int] = set()
        self.events: list[PendingEvent] = []
        self.wake = asyncio.Event()
        self.wake_events = asyncio.Event()
        self.wake_cancels = asyncio.Event()

    # ------------------------------------------------------------ lifecycle
    async def run(self, stop: asyncio.Event) -> None:
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", 16 << 20)])
        dispatch_pb2_grpc.add_DispatchServiceServicer_to_server(self, server)
        host = self.settings.dispatch_addr.rsplit(":", 1)[0]
        port = server.add_insecure_port(self.settings.dispatch_addr)
        self.address = f"{host}:{port}"
        await server.start()
        log.info("scheduler_started", scheduler_id=self.id, address=self.address)
        tasks = [
            asyncio.create_task(self._membership(stop), name="membership"),
            asyncio.create_task(self._listen(stop), name="listen"),
            asyncio.create_task(self._claim_loop(stop), name="claim"),
            asyncio.create_task(self._event_loop(stop), name="events"),
            asyncio.create_task(self._cancel_loop(stop), name="cancels"),
        ]
        try:
            await stop.wait()
        finally:
            # Stop taking work; flush what workers reported; then close streams.
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._flush_events()
            await server.stop(grace=2)

    async def _membership(self, stop: asyncio.Event) -> None:
        """Stay registered in etcd and follow the published shard map."""
        while not stop.is_set():
            session = etcd.Session(self.client, self.settings.member_ttl)
            try:
                await session.start()
                await session.put(
                    self.keys.member("schedulers", self.id), {"id": self.id, "address": self.address}
                )
                while not session.lost.is_set() and not stop.is_set():
                    shard_map, _ = await etcd.read_json(self.client, self.keys.shard_map)
                    self._apply_shard_map(shard_map or {})
                    await _sleep_or(stop, 0.2)
            except (TimeoutError, aetcd.exceptions.ClientError, OSError) as exc:
                log.warning("scheduler_membership_failed", error=str(exc))
                await _sleep_or(stop, 0.5)
            finally:
                with contextlib.suppress(Exception):
                    await session.close()
            # A lost session means the coordinator may hand our shards away.
            self._apply_shard_map({})

    def _apply_shard_map(self, shard_map: dict[str, Any]) -> None:
        mine = frozenset(shard_map.get("owners", {}).get(self.id, []))
        epoch = int(shard_map.get("epoch", 0))
        if mine != self.shards or epoch != self.epoch:
            log.info("shards_changed", scheduler_id=self.id, epoch=epoch, shards=len(mine))
            self.shards, self.epoch = mine, epoch
            self.wake.set()

    async def _listen(self, stop: asyncio.Event) -> None:
        """NOTIFY wakes the claim loop at once for a new or triggered job."""
        while not stop.is_set():
            try:
                async with self.db.listen("cronfleet_due", "cronfleet_cancel") as notes:
                    async for channel, payload in notes:
                        if payload.isdigit() and int(payload) in self.shards:
                            (self.wake if channel == "cronfleet_due" else self.wake_cancels).set()
            except CronfleetError as exc:
                log.warning("listen_failed", error=str(exc))
                await _sleep_or(stop, 0.5)

    # ---------------------------------------------------------------- claim
    async def _claim_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.wake.clear()
            try:
                await self.claim_once()
            except CronfleetError as exc:
                log.warning("claim_failed", error=str(exc))
                await _sleep_or(stop, 0.5)
            await self.dispatch()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.settings.claim_interval)

    async def claim_once(self) -> int:
        if not self.shards or len(self.queue) >= MAX_QUEUED:
            return 0
        horizon = datetime.now(UTC) + self.lookahead()
        total = 0
        while True:
            runs, replaced = await claim_due_fires(
                self.db,
                scheduler_id=self.id,
                epoch=self.epoch,
                horizon=horizon,
                batch=self.settings.claim_batch,
                misfire_grace=timedelta(seconds=self.settings.misfire_grace_seconds),
            )
            self._enqueue(runs)
            total += len(runs)
            if replaced:
                self.wake_cancels.set()
            if not runs:  # a job that fell behind yields one fire per claim: go until dry
                break
        pending = await claim_pending(
            self.db,
            scheduler_id=self.id,
            epoch=self.epoch,
            horizon=horizon,
            batch=self.settings.claim_batch,
            queued=list(self.queued_ids),
        )
        self._enqueue(pending)
        if total or pending:
            log.debug("fires_claimed", scheduler_id=self.id, fires=total, pending=len(pending))
        return total + len(pending)

    def lookahead(self) -> timedelta:
        """How far ahead to claim: docker runs need tens of seconds to arm."""
        docker = any("docker" in w.runtimes for w in self.streams.values())
        s = self.settings
        return timedelta(seconds=s.lookahead_docker if docker else s.lookahead_process)

    def _enqueue(self, runs: list[QueuedRun]) -> None:
        for run in runs:
            if run.execution_id not in self.queued_ids:
                self.queued_ids.add(run.execution_id)
                heapq.heappush(self.queue, run)

    # ------------------------------------------------------------- dispatch
    async def dispatch(self) -> None:
        """Hand queued runs to workers with credit, highest priority first."""
        while self.queue:
            plan: list[tuple[QueuedRun, WorkerStream]] = []
            credit = {w.worker_id: w.credits for w in self.streams.values()}
            while self.queue and credit:
                target = max(self.streams.values(), key=lambda w: credit.get(w.worker_id, 0))
                if credit.get(target.worker_id, 0) <= 0:
                    break
                run = heapq.heappop(self.queue)
                credit[target.worker_id] -= 1
                plan.append((run, target))
            if not plan:
                return
            try:
                assigned = await self.db.fetch_all(
                    "mark_assigned",
                    {
                        "ids": [r.execution_id for r, _ in plan],
                        "scheduled": [r.scheduled_at for r, _ in plan],
                        "workers": [w.worker_id for _, w in plan],
                        "scheduler_id": self.id,
                        "epoch": self.epoch,
                    },
                )
            except CronfleetError as exc:
                log.warning("assign_failed", error=str(exc))
                for run, _ in plan:
                    heapq.heappush(self.queue, run)
                return
            ok = {r["id"] for r in assigned}
            batches: dict[str, list[dispatch_pb2.Assignment]] = {}
            for run, stream in plan:
                self.queued_ids.discard(run.execution_id)
                if run.execution_id in ok:  # else fenced, cancelled, or taken over
                    stream.credits -= 1
                    batches.setdefault(stream.worker_id, []).append(assignment_for(run))
            for worker_id, items in batches.items():
                target_stream = self.streams.get(worker_id)
                if target_stream is None:
                    continue  # assigned to a worker that just left: declared lost later
                for i in range(0, len(items), ASSIGNMENTS_PER_MESSAGE):
                    chunk = items[i : i + ASSIGNMENTS_PER_MESSAGE]
                    target_stream.outbox.put_nowait(
                        dispatch_pb2.SchedulerMessage(
                            assignments=dispatch_pb2.AssignmentBatch(assignments=chunk)
                        )
                    )
            log.debug("runs_assigned", scheduler_id=self.id, count=len(ok))

    # ---------------------------------------------------------- worker streams
    async def Connect(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        first = await context.read()
        if first is grpc.aio.EOF or first.WhichOneof("kind") != "hello":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "first message must be hello")
            return
        hello = first.hello
        stream = WorkerStream(
            worker_id=hello.worker_id, credits=hello.capacity, runtimes=tuple(hello.runtimes)
        )
        old = self.streams.get(hello.worker_id)
        if old is not None:
            old.outbox.put_nowait(None)  # type: ignore[arg-type]  # closes the older stream
        self.streams[hello.worker_id] = stream
        log.info("worker_connected", scheduler_id=self.id, worker_id=hello.worker_id, capacity=hello.capacity)
        writer = asyncio.create_task(self._write(stream, context))
        self.wake.set()
        try:
            while True:
                msg = await context.read()
                if msg is grpc.aio.EOF:
                    break
                kind = msg.WhichOneof("kind")
                if kind == "events":
                    for ev in msg.events.events:
                        self.events.append(PendingEvent(stream, ev))
                    self.wake_events.set()
                elif kind == "credit":
                    stream.credits += msg.credit.slots
                    if self.queue:
                        self.wake.set()
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        finally:
            writer.cancel()
            if self.streams.get(hello.worker_id) is stream:
                del self.streams[hello.worker_id]
            log.info("worker_disconnected", scheduler_id=self.id, worker_id=hello.worker_id)

    @staticmethod
    async def _write(stream: WorkerStream, context: grpc.aio.ServicerContext) -> None:
        with contextlib.suppress(Exception):
            while True:
                msg = await stream.outbox.get()
                if msg is None:
                    return
                await context.write(msg)

    # --------------------------------------------------------------- events
    async def _event_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.wake_events.wait()
            self.wake_events.clear()
            await asyncio.sleep(self.settings.event_flush_interval)  # gather a batch
            try:
                await self._flush_events()
            except CronfleetError as exc:
                log.warning("event_flush_failed", error=str(exc))
                self.wake_events.set()
                await _sleep_or(stop, 0.5)

    async def _flush_events(self) -> None:
        batch, self.events = self.events, []
        if not batch:
            return
        finished = [p for p in batch if p.event.kind == dispatch_pb2.EVENT_KIND_FINISHED]
        done_ids = {p.event.execution_id for p in finished}
        all_started = [p for p in batch if p.event.kind == dispatch_pb2.EVENT_KIND_STARTED]
        # A run that started and finished within one batch is written once:
        # record_finished takes its start time too.
        started = [p for p in all_started if p.event.execution_id not in done_ids]
        try:
            async with self.db.transaction() as tx:
                if started:
                    await tx.execute(
                        "record_started",
                        {
                            "ids": [p.event.execution_id for p in started],
                            "ats": [_dt(p.event.at) for p in started],
                            "lateness": [p.event.lateness_ms for p in started],
                            "workers": [p.stream.worker_id for p in started],
                        },
                    )
                if finished:
                    starts = {p.event.execution_id: p.event for p in all_started}
                    done = await tx.fetch_all(
                        "record_finished",
                        {
                            "ids": [p.event.execution_id for p in finished],
                            "statuses": [p.event.status for p in finished],
                            "ats": [_dt(p.event.at) for p in finished],
                            "exit_codes": [
                                p.event.exit_code if p.event.HasField("exit_code") else None for p in finished
                            ],
                            "errors": [p.event.error for p in finished],
                            "log_urls": [p.event.log_url for p in finished],
                            "workers": [p.stream.worker_id for p in finished],
                            "started": [
                                _dt(starts[p.event.execution_id].at)
                                if p.event.execution_id in starts
                                else None
                                for p in finished
                            ],
                            "lateness": [
                                starts[p.event.execution_id].lateness_ms
                                if p.event.execution_id in starts
                                else None
                                for p in finished
                            ],
                            "steps": [
                                Jsonb(
                                    [
                                        MessageToDict(
                                            st,
                                            preserving_proto_field_name=True,
                                            always_print_fields_with_no_presence=True,
                                        )
                                        for st in p.event.steps
                                    ]
                                )
                                if p.event.steps
                                else None
                                for p in finished
                            ],
                            "cold": [p.event.cold_start for p in finished],
                        },
                    )
                    failed = [r["id"] for r in done if r["status"] in ("failed", "timed_out")]
                    if failed:
                        await tx.execute(
                            "schedule_retries",
                            {"ids": failed, "backoff": self.settings.retry_backoff_seconds},
                        )
        except CronfleetError:
            self.events[:0] = batch  # keep them; the worker also resends unacked
            raise
        acks: dict[int, tuple[WorkerStream, list[int]]] = {}
        for p in batch:
            acks.setdefault(id(p.stream), (p.stream, []))[1].append(p.event.seq)
        for stream, seqs in acks.values():
            stream.outbox.put_nowait(dispatch_pb2.SchedulerMessage(ack=dispatch_pb2.Ack(seqs=seqs)))

    # -------------------------------------------------------------- cancels
    async def _cancel_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake_cancels.wait(), 1.0)
            self.wake_cancels.clear()
            if not self.shards:
                continue
            try:
                rows = await self.db.fetch_all(
                    "select_cancel_requests", {"scheduler_id": self.id, "epoch": self.epoch}
                )
            except CronfleetError as exc:
                log.warning("cancel_scan_failed", error=str(exc))
                continue
            by_worker: dict[str, list[int]] = {}
            for r in rows:
                by_worker.setdefault(r["worker_id"], []).append(r["id"])
            for worker_id, ids in by_worker.items():
                stream = self.streams.get(worker_id)
                if stream is not None:
                    stream.outbox.put_nowait(
                        dispatch_pb2.SchedulerMessage(cancel=dispatch_pb2.CancelRuns(execution_ids=ids))
                    )


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """The scheduler role, until ``stop`` is set."""
    async with (
        Database.connected(settings.database_url) as db,
        etcd.connected(settings.etcd_endpoints) as client,
    ):
        await Scheduler(settings, db, client).run(stop)


async def _sleep_or(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
