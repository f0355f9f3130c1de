"""Recording what workers report: Started and Finished events (and runs a
stopping worker returns unstarted), persisted in batches, failures settled
(a retry or a dead letter, cronfleet.outcomes) in the same transaction, then
acknowledged on each stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from google.protobuf.timestamp_pb2 import Timestamp

from cronfleet import outcomes
from cronfleet.aio import sleep_or, wait_for_event
from cronfleet.codec import proto, rows
from cronfleet.db import Database, Session
from cronfleet.errors import CronfleetError
from cronfleet.v1 import dispatch_pb2
from scheduler.streams import WorkerStream

log = structlog.get_logger()
STARTED = dispatch_pb2.EVENT_KIND_STARTED
FINISHED = dispatch_pb2.EVENT_KIND_FINISHED
CHECKPOINT = dispatch_pb2.EVENT_KIND_CHECKPOINT
RETURNED = dispatch_pb2.EVENT_KIND_RETURNED


@dataclass
class Reported:
    """An event as it arrived, and the stream to acknowledge it on."""

    stream: WorkerStream
    event: dispatch_pb2.RunEvent


class EventRecorder:
    """Gathers events for ``flush_interval`` and writes each batch in one
    transaction. A batch that cannot be written is kept and tried again;
    workers also resend what stays unacknowledged, and every write is
    idempotent by execution id."""

    def __init__(
        self,
        db: Database,
        flush_interval: float,
        retry_backoff_seconds: float,
        lost_reruns: int = 3,
        hold_starts: bool = False,
    ) -> None:
        """``hold_starts``: a run's start that arrives alone waits one more
        round for its finish, so that a short run is written once, not twice
        (every execution write goes into each of the table's indexes): half
        of the no-op bench's runs had their start and finish in different
        rounds. The run shows "running" a round (``flush_interval``) later."""
        self.db = db
        self.flush_interval = flush_interval
        self.retry_backoff_seconds = retry_backoff_seconds
        self.lost_reruns = lost_reruns
        self.hold_starts = hold_starts
        self._pending: list[Reported] = []
        self._held: list[Reported] = []  # starts waiting a round for their finish
        self._wake = asyncio.Event()

    def add(self, stream: WorkerStream, events: list[dispatch_pb2.RunEvent]) -> None:
        for e in events if log.is_enabled_for(logging.DEBUG) else ():  # per event: only when asked for
            log.debug(
                "run_event",
                execution_id=e.execution_id,
                kind=dispatch_pb2.EventKind.Name(e.kind),
                status=e.status,
                worker_id=stream.worker_id,
            )
        self._pending.extend(Reported(stream, e) for e in events)
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self._held:  # they go out next round, whatever else arrives
                await wait_for_event(self._wake, self.flush_interval)
            else:
                await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self.flush_interval)  # gather a batch
            try:
                await self.flush(hold=self.hold_starts)
            except CronfleetError as exc:
                log.warning("event_flush_failed", error=str(exc))
                self._wake.set()
                await sleep_or(stop, 0.5)

    async def close(self) -> None:
        """Write what is left (on shutdown); a failure is left to the workers' resends."""
        with contextlib.suppress(CronfleetError):
            await self.flush()

    async def flush(self, hold: bool = False) -> None:
        """Write what has arrived (``hold``: a start that arrived alone, new
        this round, is kept for the next)."""
        fresh, self._pending = self._pending, []
        held, self._held = self._held, []
        if hold:
            ending = {r.event.execution_id for r in fresh if r.event.kind == FINISHED}

            def alone(r: Reported) -> bool:
                return r.event.kind == STARTED and r.event.execution_id not in ending

            self._held = [r for r in fresh if alone(r)]
            fresh = [r for r in fresh if not alone(r)]
        batch = held + fresh
        if not batch:
            return
        try:
            async with self.db.transaction() as tx:
                await self._record(tx, batch)
        except CronfleetError:
            self._pending[:0] = batch
            raise
        self._acknowledge(batch)

    async def _record(self, tx: Session, batch: list[Reported]) -> None:
        await _find_fires(tx, batch)
        finished = [r for r in batch if r.event.kind == FINISHED]
        started = {r.event.execution_id: r for r in batch if r.event.kind == STARTED}
        done = {r.event.execution_id for r in finished}
        # A run that started and finished within one batch is written once:
        # record_finished takes its start time too.
        only_started = [r for eid, r in started.items() if eid not in done]
        if only_started:
            await tx.execute("record_started", _started_params(only_started))
        checkpoints = {r.event.execution_id: r for r in batch if r.event.kind == CHECKPOINT}
        if checkpoints:  # the newest of each run's; a finished run's own wins below
            await tx.execute("record_checkpoints", _checkpoint_params(list(checkpoints.values())))
        returned = [r for r in batch if r.event.kind == RETURNED]
        if returned:  # from a stopping worker, never started: to be assigned again
            await tx.execute(
                "return_unstarted",
                {
                    "ids": [r.event.execution_id for r in returned],
                    "scheduled": _fires(returned),
                    "workers": [r.stream.worker_id for r in returned],
                    "ats": [r.event.at for r in returned],
                },
            )
        if finished:
            ended = await tx.fetch_all("record_finished", _finished_params(finished, started))
            others = [r for r in ended if r["status"] != "succeeded"]
            if others:  # settled from their whole rows (a success, from its keys)
                whole = await tx.fetch_all(
                    "executions_by_fire",
                    {"ids": [r["id"] for r in others], "scheduled": [r["scheduled_at"] for r in others]},
                )
                ended = [r for r in ended if r["status"] == "succeeded"] + whole
            await outcomes.settle(tx, ended, self.retry_backoff_seconds, datetime.now(UTC), self.lost_reruns)

    @staticmethod
    def _acknowledge(batch: list[Reported]) -> None:
        by_stream: dict[int, tuple[WorkerStream, list[int]]] = {}
        for r in batch:
            by_stream.setdefault(id(r.stream), (r.stream, []))[1].append(r.event.seq)
        for stream, seqs in by_stream.values():
            stream.send(dispatch_pb2.SchedulerMessage(ack=dispatch_pb2.Ack(seqs=seqs)))


async def _find_fires(tx: Session, batch: list[Reported]) -> None:
    """Events that do not name their run's fire (a worker from before it was
    reported, a run recovered after a restart) get it from the table."""
    unnamed = [r for r in batch if not r.event.HasField("scheduled_at")]
    if not unnamed:
        return
    rows = await tx.fetch_all("execution_fires", {"ids": list({r.event.execution_id for r in unnamed})})
    fires = {row["id"]: row["scheduled_at"] for row in rows}
    for r in unnamed:
        if r.event.execution_id in fires:
            r.event.scheduled_at.CopyFrom(proto.timestamp(fires[r.event.execution_id]))


def _fires(reported: list[Reported]) -> list[Timestamp | None]:
    """Each event's fire (None: no such execution, the write finds no row).
    Times go to Postgres as the Timestamps they arrived as (cronfleet.db.adapters)."""
    return [r.event.scheduled_at if r.event.HasField("scheduled_at") else None for r in reported]


def _started_params(started: list[Reported]) -> dict[str, Any]:
    return {
        "ids": [r.event.execution_id for r in started],
        "scheduled": _fires(started),
        "ats": [r.event.at for r in started],
        "lateness": [r.event.lateness_ms for r in started],
        "workers": [r.stream.worker_id for r in started],
        "containers": [r.event.container_id for r in started],
    }


def _finished_params(finished: list[Reported], started: dict[int, Reported]) -> dict[str, Any]:
    def start_of(r: Reported) -> tuple[Timestamp, float, str] | None:
        """When the run started, how late, in which container: from its
        STARTED event in this batch, or from the finish itself (a short run's
        one event)."""
        if r.event.HasField("started_at"):
            return r.event.started_at, r.event.lateness_ms, ""
        s = started.get(r.event.execution_id)
        return (s.event.at, s.event.lateness_ms, s.event.container_id) if s else None

    starts = [start_of(r) for r in finished]
    events = [r.event for r in finished]
    sparse = rows.sparse  # the columns most runs leave at their default: NULL arrays
    return {
        "ids": [e.execution_id for e in events],
        "scheduled": _fires(finished),
        "statuses": [e.status for e in events],
        "ats": [e.at for e in events],
        "exit_codes": sparse([e.exit_code if e.HasField("exit_code") else None for e in events]),
        "errors": sparse([e.error for e in events], ""),
        "log_urls": sparse([e.log_url for e in events], ""),
        "log_bytes": sparse([e.log_bytes or None for e in events]),
        "workers": [r.stream.worker_id for r in finished],
        "started": sparse([s[0] if s else None for s in starts]),
        "lateness": sparse([s[1] if s else None for s in starts]),
        "steps": sparse(
            [
                rows.step_results_param(proto.step_results_from_proto(e.steps)) if e.steps else None
                for e in events
            ]
        ),
        "cold": sparse([e.cold_start for e in events], False),
        "checkpoints": sparse([e.checkpoint if e.HasField("checkpoint") else None for e in events]),
        "truncated": sparse([e.checkpoint_truncated for e in events], False),
        "containers": sparse(
            [e.container_id or (s[2] if s else "") for e, s in zip(events, starts, strict=True)], ""
        ),
    }


def _checkpoint_params(reported: list[Reported]) -> dict[str, Any]:
    return {
        "ids": [r.event.execution_id for r in reported],
        "scheduled": _fires(reported),
        "checkpoints": [r.event.checkpoint for r in reported],
        "truncated": [r.event.checkpoint_truncated for r in reported],
    }
