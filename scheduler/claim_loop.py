"""The claim loop: claims whenever woken (a NOTIFY, new shards, a worker
with room) or on its interval, then hands what it has to the dispatcher
(scheduler.claim has the claim statements)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import structlog

from cronfleet import metrics
from cronfleet.aio import sleep_or, wait_for_event
from cronfleet.config import Settings
from cronfleet.db import Database
from cronfleet.errors import CronfleetError
from cronfleet.sealing import SecretKey
from scheduler.claim import Claimed, claim_due_fires, claim_pending
from scheduler.dispatch import Dispatcher, DispatchQueue
from scheduler.ownership import ShardOwnership
from scheduler.prepared import JobCache
from scheduler.streams import WorkerStreams

log = structlog.get_logger()
# More queued than this and the claim waits for workers to catch up.
MAX_QUEUED = 50_000
# After this many claims in a row found nothing due, a scheduler is idle: it
# next claims when its soonest fire (or attempt) comes within its lookahead,
# at least a claim interval and at most ``claim_idle_interval`` away, so a
# fire is claimed when it would have been while busy. What makes work due
# at once says so by NOTIFY (a job made, changed or run now; a retry, a
# downstream run, a returned one), and shards and workers with room wake it
# too: the idle interval bounds what a missed notice costs. An idle
# cluster's schedulers took 48-58 ms of CPU a second at 0.2 s, and
# Postgres 19-23 for them.
IDLE_AFTER = 5
REACH_MARGIN = 0.005  # s


class ClaimLoop:
    """Claims whenever woken (a NOTIFY, new shards, a worker with room) or
    every ``claim_interval`` (idle: when something comes within reach), then
    hands what it has to the dispatcher."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        ownership: ShardOwnership,
        queue: DispatchQueue,
        dispatcher: Dispatcher,
        streams: WorkerStreams,
        wake: asyncio.Event,
        on_replaced: asyncio.Event,
    ) -> None:
        self.settings = settings
        self.db = db
        self.ownership = ownership
        self.queue = queue
        self.dispatcher = dispatcher
        self.streams = streams
        self.wake = wake
        self.on_replaced = on_replaced  # set when "replace" jobs have older runs to stop
        self._fence_checked = 0.0
        self.jobs = JobCache(SecretKey.from_settings(settings))
        self.empty_claims = 0  # claims in a row that found nothing due (see IDLE_AFTER)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.wake.clear()
            wait = self.settings.claim_interval
            try:
                await self.claim_once()
                wait = await self.until_next_claim()
            except CronfleetError as exc:
                log.warning("claim_failed", error=str(exc))
                self.empty_claims = 0
                await sleep_or(stop, 0.5)
            await self.dispatcher.dispatch()
            await wait_for_event(self.wake, wait)

    async def until_next_claim(self) -> float:
        """Seconds until the next claim, unless woken (see IDLE_AFTER)."""
        s = self.settings
        if self.empty_claims < IDLE_AFTER or s.claim_idle_interval <= s.claim_interval:
            return s.claim_interval
        now, ahead = datetime.now(UTC), self.lookahead()
        row = await self.db.fetch_one(
            "next_due",
            {
                "scheduler_id": self.ownership.scheduler_id,
                "epoch": self.ownership.epoch,
                "until": now + ahead + timedelta(seconds=s.claim_idle_interval),
            },
        )
        if row is None or row["at"] is None:
            return s.claim_idle_interval
        due: datetime = row["at"]
        # A hair past the moment it comes within reach, so that claim finds it.
        within_reach = (due - ahead - now).total_seconds() + REACH_MARGIN
        if within_reach <= s.claim_interval:
            # Due, or an attempt held back (its job has no room): busy again
            # for IDLE_AFTER claims before asking once more.
            self.empty_claims = 0
            return s.claim_interval
        return min(within_reach, s.claim_idle_interval)

    async def _check_fence(self, scheduler_id: str, epoch: int, believed: frozenset[int]) -> None:
        """A claim that took nothing may have been refused: Postgres gives our
        shards to another scheduler at a newer epoch while we were frozen
        (SIGSTOP, a long pause), before our etcd session tells us. Looked at
        once a second at most: counted, logged, and the shards no longer ours
        are dropped here until etcd says otherwise."""
        now = time.monotonic()
        if now - self._fence_checked < 1.0 or not believed:
            return
        self._fence_checked = now
        rows = await self.db.fetch_all("shards_owned_at", {"scheduler_id": scheduler_id, "epoch": epoch})
        still = frozenset(r["shard_id"] for r in rows)
        if not believed <= still:
            metrics.CLAIMS_FENCED.inc()
            log.warning("claim_fenced", scheduler_id=scheduler_id, epoch=epoch, shards=len(believed - still))
            if epoch == self.ownership.epoch:
                self.ownership.keep_only(still)

    def queue_bound(self) -> int:
        """How many claimed runs may wait here for workers: what the workers
        keeping up have room for. A worker falling behind (overdue runs) gets
        nothing more, and fires it cannot take stay unclaimed in Postgres,
        where the job's misfire policy bounds how late they run; claimed, they
        would wait here, late without limit. With no worker connected yet (or
        none heard from lately), one claim batch waits here."""
        responsive = self.streams.responsive()
        if not self.streams.heard_lately():
            # None connected yet, or none heard from lately: all silent at once
            # is most likely our own pause (its messages wait unread), and a
            # claim then also meets the fence if our shards went elsewhere.
            return self.settings.claim_batch
        room = sum(max(0, s.credits) for s in responsive)
        return min(MAX_QUEUED, room)

    def _batch(self, bound: int, fresh: int | None) -> int:
        batch = min(self.settings.claim_batch, bound - len(self.queue))
        if fresh is not None:
            batch = min(batch, max(1, fresh - self.queue.fresh_container_runs()))
        return max(1, batch)

    def fresh_room(self) -> int | None:
        """How many more runs needing a fresh container (docker per_run) the
        workers keeping up can start on time (their Room, less what they
        hold); None when a worker has no such limit. Claimed beyond this,
        such runs would wait here and start late without bound."""
        rooms = [s.room_left() for s in self.streams.responsive()]
        if not rooms or any(r is None for r in rooms):
            return None
        return sum(r for r in rooms if r is not None)

    def lookahead(self) -> timedelta:
        """How far ahead to claim: docker runs need tens of seconds to arm."""
        s = self.settings
        ahead = s.lookahead_docker if self.streams.any_runs("docker") else s.lookahead_process
        return timedelta(seconds=ahead)

    def _workers_full(self, bound: int, fresh: int | None) -> bool:
        """The queue holds what the workers have room for (fresh containers too)."""
        return len(self.queue) >= bound or (fresh is not None and self.queue.fresh_container_runs() >= fresh)

    async def claim_once(self) -> int:
        bound, fresh = self.queue_bound(), self.fresh_room()
        if not self.ownership.shards or self._workers_full(bound, fresh):
            # Workers are not keeping up: fires left unclaimed fall behind, and
            # their misfire policy decides when they are claimed, instead of a
            # backlog that grows without end.
            self.empty_claims = 0  # not idle: claimed again as soon as there is room
            return 0
        horizon = datetime.now(UTC) + self.lookahead()
        scheduler_id, epoch = self.ownership.scheduler_id, self.ownership.epoch
        believed = self.ownership.shards  # what this claim is for, whatever etcd says meanwhile
        total = due = 0
        while True:
            claimed = await self._claim_and_send(horizon, scheduler_id, epoch, self._batch(bound, fresh))
            self.queue.push(claimed.runs)
            total += len(claimed.runs) + len(claimed.assigned)
            due += claimed.fires
            if claimed.replaced:
                self.on_replaced.set()
            # Each batch goes out before the next is claimed: workers start on
            # it while this claims the next (claiming all first held the first
            # fire of a large second until the last was claimed).
            await self.dispatcher.dispatch()
            if not claimed.fires:  # a job that fell behind yields one fire per claim: go until dry
                break
            # What the workers have room for now (the runs just sent spent some).
            bound, fresh = self.queue_bound(), self.fresh_room()
            if self._workers_full(bound, fresh):
                break  # or until the workers have no room left
        pending = await claim_pending(
            self.db,
            scheduler_id=scheduler_id,
            epoch=epoch,
            horizon=horizon,
            batch=self.settings.claim_batch,
            queued=self.queue.queued_ids,
            jobs=self.jobs,
        )
        self.queue.push(pending)
        self.empty_claims = 0 if due or pending else self.empty_claims + 1
        if not total and not pending:
            await self._check_fence(scheduler_id, epoch, believed)
        if total or pending:
            log.debug(
                "fires_claimed", scheduler_id=self.ownership.scheduler_id, fires=total, pending=len(pending)
            )
        return total + len(pending)

    async def _claim_and_send(self, horizon: datetime, scheduler_id: str, epoch: int, batch: int) -> Claimed:
        """One claim; the runs it assigned are sent before another assignment
        can interleave (the dispatcher's lock, as a worker's hello expects:
        scheduler.rejoin)."""
        async with self.dispatcher.lock:
            claimed = await claim_due_fires(
                self.db,
                scheduler_id=scheduler_id,
                epoch=epoch,
                horizon=horizon,
                batch=batch,
                misfire_grace=timedelta(seconds=self.settings.misfire_grace_seconds),
                misfire_catchup=timedelta(seconds=self.settings.misfire_catchup_seconds),
                user_quota=self.settings.quota_concurrent_runs,
                jobs=self.jobs,
                choose_workers=self.dispatcher.choose_workers,
            )
            self.dispatcher.send_assigned(claimed.assigned)
        return claimed
