"""Handing claimed runs to workers: a queue by priority, credit-based flow
control, and the fenced write that makes an assignment stick."""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

from cronfleet import metrics
from cronfleet.codec import proto
from cronfleet.db import Database
from cronfleet.errors import CronfleetError
from cronfleet.v1 import dispatch_pb2, jobs_pb2
from scheduler.ownership import ShardOwnership
from scheduler.streams import WorkerStream, WorkerStreams

log = structlog.get_logger()
# Several assignments share one stream message: one stream carries far more
# fires per second packed than one per message.
ASSIGNMENTS_PER_MESSAGE = 64


def needs_fresh_container(job: jobs_pb2.JobSpec) -> bool:
    """A per_run command (docker: a warm or cold container of its own), not a
    per_job run or an HTTP call. Counted against a worker's room."""
    return job.container != "per_job" and not job.HasField("http")


@dataclass(frozen=True)
class Candidate:
    """A fire being claimed, as far as choosing its worker goes."""

    priority: int
    fire_at: datetime
    needs_fresh_container: bool


@dataclass(order=True)
class QueuedRun:
    """An attempt claimed by this scheduler and not yet on a worker.
    Ordered by priority (highest first), then fire time, then id."""

    sort_key: tuple[int, datetime, int]
    execution_id: int = field(compare=False)
    job_id: uuid.UUID = field(compare=False)
    owner_id: uuid.UUID = field(compare=False)
    scheduled_at: datetime = field(compare=False)
    attempt: int = field(compare=False)
    fire_at: datetime = field(compare=False)
    # What to run, as workers get it (encoded once per job version).
    job: jobs_pb2.JobSpec = field(compare=False, repr=False)
    checkpoint: bytes = field(default=b"", compare=False, repr=False)  # the previous attempt's
    shard_id: int = field(default=0, compare=False)
    refused: str = field(default="", compare=False)  # why the worker must run nothing (a secret not opened)

    @property
    def needs_fresh_container(self) -> bool:
        return needs_fresh_container(self.job)

    def add_to(self, batch: RepeatedCompositeFieldContainer[dispatch_pb2.Assignment]) -> None:
        """Its assignment, made in place in ``batch`` (an AssignmentBatch's
        repeated field): a message built apart is copied whole, its job
        with it, into the batch (and a batch into its message), 8-11 us a
        run here against 3 this way, with one Timestamp for both times when
        the run is not a retry."""
        scheduled_at = proto.timestamp(self.scheduled_at)
        fire_at = scheduled_at if self.fire_at == self.scheduled_at else proto.timestamp(self.fire_at)
        added = batch.add(
            execution_id=self.execution_id,
            job_id=str(self.job_id),
            owner_id=str(self.owner_id),
            scheduled_at=scheduled_at,
            attempt=self.attempt,
            fire_at=fire_at,
            checkpoint=self.checkpoint,
            refused=self.refused,
        )
        added.job.CopyFrom(self.job)


class DispatchQueue:
    """Claimed runs waiting for a worker, highest priority first."""

    def __init__(self) -> None:
        self._heap: list[QueuedRun] = []
        self._queued: set[int] = set()

    def __len__(self) -> int:
        return len(self._heap)

    def oldest_late(self) -> float:
        """Seconds past its fire time of the most overdue run here (0: none due)."""
        now = datetime.now(UTC)
        return max((max(0.0, (now - r.fire_at).total_seconds()) for r in self._heap), default=0.0)

    @property
    def queued_ids(self) -> list[int]:
        """Execution ids held here (the pending claim must not take them again)."""
        return list(self._queued)

    def push(self, runs: list[QueuedRun]) -> None:
        for run in runs:
            if run.execution_id not in self._queued:
                self._queued.add(run.execution_id)
                heapq.heappush(self._heap, run)

    def plan(self, streams: list[WorkerStream]) -> list[tuple[QueuedRun, WorkerStream]]:
        """Take runs off the queue for ``streams`` by their credit: each run to
        the stream with the most credit left, a run that needs a fresh
        container only to a stream with room for one (a run no stream has
        room for waits, and those behind it go on). Credits and room are
        spent by :meth:`Dispatcher.dispatch` once the assignment is recorded."""
        picker = _Picker(streams)
        plan: list[tuple[QueuedRun, WorkerStream]] = []
        waiting: list[QueuedRun] = []
        while self._heap and picker.any_credit():
            run = heapq.heappop(self._heap)
            target = picker.pick(run.needs_fresh_container)
            if target is None:
                waiting.append(run)
                continue
            plan.append((run, target))
        for run in waiting:
            heapq.heappush(self._heap, run)
        return plan

    def fresh_container_runs(self) -> int:
        """Runs here that need a fresh container (they wait for room)."""
        return sum(1 for r in self._heap if r.needs_fresh_container)

    def put_back(self, runs: list[QueuedRun]) -> None:
        """Runs of a plan that could not be recorded: they wait for the next round."""
        for run in runs:
            heapq.heappush(self._heap, run)

    def forget(self, runs: list[QueuedRun]) -> None:
        """Runs that left the queue for good (assigned, or fenced away)."""
        self._queued.difference_update(r.execution_id for r in runs)


class _Picker:
    """Spends workers' credit (and room, for runs needing a fresh container)
    while a plan is made: each run to the stream with the most credit left
    that can take it."""

    def __init__(self, streams: list[WorkerStream]) -> None:
        self.streams = streams
        self.credit = {s.worker_id: s.credits for s in streams}
        self.room = {s.worker_id: s.room_left() for s in streams}

    def any_credit(self) -> bool:
        return any(c > 0 for c in self.credit.values())

    def pick(self, fresh: bool) -> WorkerStream | None:
        fits = [s for s in self.streams if self.credit[s.worker_id] > 0 and self._has_room(s, fresh)]
        if not fits:
            return None
        target = max(fits, key=lambda s: self.credit[s.worker_id])
        self.credit[target.worker_id] -= 1
        left = self.room[target.worker_id]
        if fresh and left is not None:
            self.room[target.worker_id] = left - 1
        return target

    def _has_room(self, stream: WorkerStream, fresh: bool) -> bool:
        left = self.room[stream.worker_id]
        return not fresh or left is None or left > 0


class Dispatcher:
    """Moves runs from the queue to workers with credit."""

    def __init__(
        self,
        db: Database,
        scheduler_id: str,
        ownership: ShardOwnership,
        queue: DispatchQueue,
        streams: WorkerStreams,
    ) -> None:
        self.db = db
        self.scheduler_id = scheduler_id
        self.ownership = ownership
        self.queue = queue
        self.streams = streams
        self.lock = asyncio.Lock()  # a worker's hello waits for assignments in flight (scheduler.rejoin)

    async def dispatch(self) -> int:
        """Assign what credit allows; return how many runs went out."""
        async with self.lock:
            return await self._dispatch()

    async def _dispatch(self) -> int:
        sent = 0
        while plan := self.queue.plan(self.streams.responsive()):
            try:
                assigned = await self._record(plan)
            except CronfleetError as exc:
                log.warning("assign_failed", error=str(exc))
                self.queue.put_back([run for run, _ in plan])
                return sent
            self.queue.forget([run for run, _ in plan])
            sent += self._send([(run, stream) for run, stream in plan if run.execution_id in assigned])
        return sent

    def choose_workers(self, candidates: list[Candidate | None]) -> list[str]:
        """Workers for fires being claimed, so that the claim records them
        assigned (one execution write less per fire than assigning after):
        highest priority first, by credit and room; "" for a fire that gets
        none (or is not to run: None), which waits in the queue. Nothing is
        chosen while runs wait in the queue: they go first. The caller holds
        :attr:`lock` until :meth:`send_assigned`."""
        chosen = [""] * len(candidates)
        if len(self.queue):
            return chosen
        picker = _Picker(self.streams.responsive())
        order = sorted(
            ((i, c) for i, c in enumerate(candidates) if c is not None),
            key=lambda ic: (-ic[1].priority, ic[1].fire_at),
        )
        for i, candidate in order:
            if not picker.any_credit():
                break
            target = picker.pick(candidate.needs_fresh_container)
            if target is not None:
                chosen[i] = target.worker_id
        return chosen

    def send_assigned(self, assigned: list[tuple[QueuedRun, str]]) -> int:
        """Hand over runs the claim recorded assigned (:meth:`choose_workers`).
        A worker gone meanwhile: its runs are declared lost with it."""
        pairs = []
        for run, worker_id in assigned:
            stream = self.streams.get(worker_id)
            if stream is not None:
                pairs.append((run, stream))
        return self._send(pairs)

    async def _record(self, plan: list[tuple[QueuedRun, WorkerStream]]) -> set[int]:
        """Mark the runs assigned; fenced, so a run of a shard this scheduler no
        longer owns (or that was cancelled, or taken over) is left out."""
        rows = await self.db.fetch_all(
            "mark_assigned",
            {
                "ids": [r.execution_id for r, _ in plan],
                "scheduled": [r.scheduled_at for r, _ in plan],
                "workers": [w.worker_id for _, w in plan],
                "scheduler_id": self.scheduler_id,
                "epoch": self.ownership.epoch,
            },
        )
        return {r["id"] for r in rows}

    def _send(self, assigned: list[tuple[QueuedRun, WorkerStream]]) -> int:
        batches: dict[str, list[QueuedRun]] = {}
        tracing = log.is_enabled_for(logging.DEBUG)  # per run: only when asked for
        handed_at = time.time()
        for run, stream in assigned:
            if tracing:
                log.debug(
                    "run_assigned",
                    execution_id=run.execution_id,
                    job_id=str(run.job_id),
                    attempt=run.attempt,
                    shard_id=run.shard_id,
                    worker_id=stream.worker_id,
                    fire_at=run.fire_at.isoformat(),
                )
            stream.credits -= 1
            # A run handed over late (a backlog, a failover) is the worker's
            # to start from now: judged by its fire time, every run of a
            # backlog was overdue the moment it was sent, and nothing more
            # went out until the worker reported starts (the claims of a
            # 100k backlog went in lockstep with those reports, a core idle).
            stream.unstarted[run.execution_id] = max(run.fire_at.timestamp(), handed_at)
            if run.needs_fresh_container and stream.room is not None:
                stream.pooled.add(run.execution_id)
            batches.setdefault(stream.worker_id, []).append(run)
        for worker_id, runs in batches.items():
            current = self.streams.get(worker_id)
            if current is None:
                continue  # it left meanwhile: the coordinator declares these runs lost
            metrics.WORKER_CREDITS.labels(worker_id).set(current.credits)
            metrics.ASSIGNMENTS_SENT.inc(len(runs))
            for i in range(0, len(runs), ASSIGNMENTS_PER_MESSAGE):
                message = dispatch_pb2.SchedulerMessage()
                for run in runs[i : i + ASSIGNMENTS_PER_MESSAGE]:
                    run.add_to(message.assignments.assignments)
                current.send(message)
        if assigned:
            log.debug("runs_assigned", scheduler_id=self.scheduler_id, count=len(assigned))
        return len(assigned)
